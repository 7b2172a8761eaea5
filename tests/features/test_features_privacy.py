"""Phones and e-mails: every spelling of one value gets one key; malformed values get none."""

from __future__ import annotations

import pytest

from features.privacy import key_identifier, mask_text, normalise_email, normalise_phone

PHONE_SPELLINGS = ["13800138000", "138 0013 8000", "138-0013-8000", "+86 138 0013 8000", "+8613800138000",
                   "86 138 0013 8000", "0086 13800138000", "(+86) 138-0013-8000", " 13800138000 "]
EMAIL_SPELLINGS = ["alice.wang@example.com", " Alice.Wang@Example.COM ", "ALICE.WANG@EXAMPLE.COM",
                   "mailto:alice.wang@example.com"]


@pytest.mark.parametrize("raw", PHONE_SPELLINGS)
def test_phone_spellings_normalise_to_e164(raw):
    assert normalise_phone(raw) == "+8613800138000"


@pytest.mark.parametrize("raw", EMAIL_SPELLINGS)
def test_email_spellings_normalise(raw):
    assert normalise_email(raw) == "alice.wang@example.com"


def test_spellings_share_one_key(salt):
    phone_keys = {key_identifier("phone", p, salt) for p in PHONE_SPELLINGS}
    email_keys = {key_identifier("email", e, salt) for e in EMAIL_SPELLINGS}
    assert len(phone_keys) == 1 and len(email_keys) == 1
    (phone_key,), (email_key,) = phone_keys, email_keys
    assert phone_key.startswith("ph_") and len(phone_key) == 3 + 64
    assert email_key.startswith("em_") and "alice" not in email_key and "13800138000" not in phone_key


@pytest.mark.parametrize("raw", ["12345", "1380013800", "138001380001", "23800138000", "1380013800a",
                                 "+86 238 0013 8000", "++8613800138000", "138+00138000", "", "   ", None,
                                 "phone", True])
def test_malformed_phone_is_none(raw, salt):
    assert normalise_phone(raw) is None
    assert key_identifier("phone", raw, salt) is None


@pytest.mark.parametrize("raw", ["alice", "alice@", "@example.com", "alice@example", "a b@example.com",
                                 "alice..wang@example.com", "", None, 42])
def test_malformed_email_is_none(raw, salt):
    assert normalise_email(raw) is None
    assert key_identifier("email", raw, salt) is None


def test_other_countries_keep_their_code():
    assert normalise_phone("+1 (415) 555-0100") == "+14155550100"
    assert normalise_phone("0044 20 7946 0958") == "+442079460958"


def test_salt_changes_keys():
    a = key_identifier("phone", "13800138000", b"salt-a")
    b = key_identifier("phone", "13800138000", b"salt-b")
    assert a != b and a.startswith("ph_") and b.startswith("ph_")
    assert key_identifier("email", "x@y.com", b"salt-a") != key_identifier("email", "x@y.com", b"salt-b")


def test_non_pii_identifiers_pass_through_stripped(salt):
    assert key_identifier("member_id", "  M-001 ", salt) == "M-001"
    assert key_identifier("cookie_id", 12345, salt) == "12345"
    assert key_identifier("device_id", "   ", salt) is None


def test_unknown_id_type_is_rejected(salt):
    with pytest.raises(ValueError, match="id_type"):
        key_identifier("passport", "X1", salt)


def test_mask_text_hides_phones_and_emails():
    masked = mask_text('{"phone": "+86 138 0013 8000", "email": "alice.wang@example.com"}')
    assert "138" not in masked and "alice" not in masked and "<digits>" in masked and "<email>" in masked
