"""Unit tests of the pure funnel stages: catalog validation, consent, arbitration."""

import pytest

from config import ACTIONS_FILE
from serving.arbitration import arbitrate
from serving.candidates import expand
from serving.catalog import CatalogError, load_catalog, parse_catalog
from serving.contact_policy import apply_consent, has_consent

GOOD = {"id": "a", "channels": ["sms"], "value": 10}


def test_shipped_catalog_is_valid():
    catalog = load_catalog(ACTIONS_FILE)
    assert len(catalog) >= 8
    assert {c for a in catalog for c in a.channels} >= {"sms", "email", "web", "pos", "guide", "paid_ads"}


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"channels": ["sms"], "value": 1}, "field 'id' is required"),
        ({"id": "x", "value": 1}, "'x': field 'channels'"),
        ({"id": "x", "channels": ["fax"], "value": 1}, "unknown channels \\['fax'\\]"),
        ({"id": "x", "channels": ["sms"]}, "'x': field 'value' is required"),
        ({"id": "x", "channels": ["sms"], "value": "lots"}, "'x': field 'value' has invalid value"),
        ({"id": "x", "channels": ["sms"], "value": 1, "discount": 1.5}, "'x': field 'discount'"),
        ({"id": "x", "channels": ["sms"], "value": -1}, "must be >= 0"),
    ],
)
def test_invalid_catalog_entries_name_action_and_field(entry, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog({"actions": [entry]})


def test_duplicate_action_ids_are_rejected():
    with pytest.raises(CatalogError, match="duplicate id"):
        parse_catalog({"actions": [GOOD, GOOD]})


@pytest.mark.parametrize(
    "features, channel, expected",
    [
        (None, "sms", False),            # unknown person has granted nothing
        (None, "web", True),             # inbound placements need no marketing consent
        ({"consent_sms": 0}, "sms", False),
        ({"consent_sms": 1}, "sms", True),
        ({"consent_sms": None}, "sms", False),
        ({"consent_sms": float("nan")}, "sms", False),
        ({"consent_email": 1}, "sms", False),
    ],
)
def test_consent(features, channel, expected):
    assert has_consent(features, channel) is expected


def test_consent_filter_marks_removed_candidates():
    catalog = load_catalog(ACTIONS_FILE)
    candidates = expand(catalog, None)
    kept = apply_consent(candidates, {"consent_email": 1})
    assert kept and all(c.channel not in {"sms", "wechat_oa", "app", "paid_ads", "guide"} for c in kept)
    removed = [c for c in candidates if c.removed_by]
    assert removed and all(c.removed_by.startswith("no consent") for c in removed)


def test_arbitration_ranks_by_p_c_v_l_one_channel_per_action():
    catalog = parse_catalog({"actions": [
        {"id": "cheap", "channels": ["email", "sms"], "value": 10, "lever": 1.0},
        {"id": "rich", "channels": ["email"], "value": 50, "lever": 0.5},
        {"id": "boosted", "channels": ["email"], "value": 10, "lever": 3.0},
    ]})
    candidates = expand(catalog, None)
    for c, p in zip(candidates, [0.10, 0.30, 0.05, 0.10], strict=True):
        c.propensity = p
    top = arbitrate(candidates, limit=2)
    # priorities: cheap/email 1.0, cheap/sms 3.0, rich 1.25, boosted 3.0
    assert [(c.action.id, c.channel) for c in top] == [("boosted", "email"), ("cheap", "sms")]
    assert candidates[0].removed_by == "another channel ranked higher for this action"
    assert candidates[2].removed_by == "below the top-k cut"


def test_expand_restricts_to_requested_channel():
    catalog = load_catalog(ACTIONS_FILE)
    assert {c.channel for c in expand(catalog, "pos")} == {"pos"}
    assert expand(catalog, "pos")
