"""Normalise and key personal identifiers so raw phones and e-mails never leave ingestion.

Phones and e-mails are normalised first (so ``138 0013 8000`` and ``+86-13800138000`` meet) and then keyed
with HMAC-SHA256 under a per-install salt: the key is stable for joins but cannot be reversed without the
salt. Serving calls :func:`key_identifier` to find a customer known by a raw phone or e-mail.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from features.schema import ID_TYPES, PII_ID_TYPES

DEFAULT_COUNTRY_CODE = "86"
KEY_PREFIX: dict[str, str] = {"phone": "ph_", "email": "em_"}

_PHONE_CHARS = re.compile(r"^[+\d\s\-().]+$")
_NON_DIGITS = re.compile(r"\D")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_EMAIL = re.compile(r"^[a-z0-9._%+\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)*\.[a-z]{2,}$")
_EMAIL_IN_TEXT = re.compile(r"[^\s\"'<>@,;:{}]+@[^\s\"'<>@,;:{}]+\.[a-zA-Z]{2,}")
_DIGIT_RUN_IN_TEXT = re.compile(r"\+?\d[\d\s\-().]{4,}\d")


def normalise_phone(raw: object) -> str | None:
    """Return the E.164 form (``+8613800138000``) or None when ``raw`` is not a plausible phone.

    An 11-digit number starting with 1 is a mainland mobile (country +86). ``00`` and ``+`` prefixes are
    international; a number with country 86 must then be a valid mainland mobile.
    """
    if raw is None or isinstance(raw, bool):
        return None
    text = str(raw).strip()
    if text.lower().startswith("tel:"):
        text = text[4:].strip()
    if not text or not _PHONE_CHARS.match(text):
        return None
    text = text.replace("(", "").replace(")", "").strip()
    if text.count("+") > 1 or "+" in text[1:]:
        return None
    international = text.startswith("+")
    digits = _NON_DIGITS.sub("", text)
    if not international and digits.startswith("00"):
        international, digits = True, digits[2:]
    if not international:
        if _CN_MOBILE.match(digits):
            return "+" + DEFAULT_COUNTRY_CODE + digits
        if len(digits) == 13 and digits.startswith(DEFAULT_COUNTRY_CODE) and _CN_MOBILE.match(digits[2:]):
            return "+" + digits
        return None
    if digits.startswith(DEFAULT_COUNTRY_CODE):
        return "+" + digits if _CN_MOBILE.match(digits[2:]) else None
    if 8 <= len(digits) <= 15 and digits[0] != "0":
        return "+" + digits
    return None


def normalise_email(raw: object) -> str | None:
    """Return the trimmed, lower-cased address or None when it is not a plausible e-mail."""
    if raw is None or not isinstance(raw, str):
        return None
    text = raw.strip().lower()
    if text.startswith("mailto:"):
        text = text[7:].strip()
    if not _EMAIL.match(text) or ".." in text:
        return None
    return text


def _hmac_hex(salt: bytes, value: str) -> str:
    return hmac.new(salt, value.encode("utf-8"), hashlib.sha256).hexdigest()


def key_identifier(id_type: str, raw: object, salt: bytes) -> str | None:
    """Map one raw identifier to the value stored in the lake; None when it is malformed or empty.

    ``phone``/``email`` are normalised then keyed (``ph_<hmac hex>``/``em_<hmac hex>``); other id types
    are pseudonymous already and pass through stripped.
    """
    if id_type not in ID_TYPES:
        raise ValueError(f"id_type must be one of {ID_TYPES}, got {id_type!r}")
    if id_type in PII_ID_TYPES:
        normalised = normalise_phone(raw) if id_type == "phone" else normalise_email(raw)
        if normalised is None:
            return None
        return KEY_PREFIX[id_type] + _hmac_hex(salt, f"{id_type}:{normalised}")
    if raw is None or isinstance(raw, bool | dict | list):
        return None
    text = str(raw).strip()
    return text or None


def mask_text(text: object) -> str | None:
    """Mask e-mail addresses and long digit runs in free text (used for quarantined raw fragments)."""
    if text is None:
        return None
    masked = _EMAIL_IN_TEXT.sub("<email>", str(text))
    return _DIGIT_RUN_IN_TEXT.sub("<digits>", masked)


def row_fingerprint(text: str, salt: bytes) -> str:
    """Keyed digest of a raw row: lets quarantine dedupe re-ingested rows without storing them raw."""
    return _hmac_hex(salt, "row:" + text)[:24]
