"""WorldConfig validation and the catalog copies kept in sync with the product's contracts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features import schema
from simulator import ACTIONS, CATEGORIES, CHANNELS, CONSENT_CHANNELS, WorldConfig, catalog

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"customers": 0}, "customers"),
    ({"customers": 2.5}, "customers"),
    ({"days": -1}, "days"),
    ({"n_items": 5}, "n_items"),
    ({"seed": -3}, "seed"),
    ({"start": "not a date"}, "start"),
    ({"touch_rate": 1.5}, "touch_rate"),
    ({"order_rate": -0.1}, "order_rate"),
    ({"duplicate_share": 2}, "duplicate_share"),
])
def test_invalid_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WorldConfig(**kwargs)


def test_defaults():
    c = WorldConfig()
    assert (c.customers, c.days, c.seed, c.n_items) == (5000, 120, 7, 200)
    assert str(c.start_ts) == "2026-01-01 00:00:00+00:00"


def test_vocabularies_match_features_schema():
    assert CHANNELS == schema.CHANNELS
    assert CONSENT_CHANNELS == schema.CONSENT_CHANNELS
    assert catalog.ID_TYPES == schema.ID_TYPES
    assert catalog.EVENT_TYPES == schema.EVENT_TYPES
    assert catalog.RAW_COLUMNS == schema.RAW_COLUMNS
    assert len(CATEGORIES) == 10


def test_actions_match_config_yaml():
    spec = yaml.safe_load((ROOT / "config" / "actions.yaml").read_text())["actions"]
    assert [a["id"] for a in spec] == list(ACTIONS)
    for a in spec:
        mine = ACTIONS[a["id"]]
        assert tuple(a["channels"]) == mine["channels"], a["id"]
        assert a.get("category") == mine["category"], a["id"]
        assert a.get("discount", 0.0) == mine["discount"], a["id"]
