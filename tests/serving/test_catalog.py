"""The action catalog: validation names the action and the field; `nba catalog check` exits 2 on errors."""

from datetime import UTC, datetime

import pytest
import yaml
from typer.testing import CliRunner

from config import ACTIONS_FILE
from pipelines.cli import app
from serving.catalog import CatalogError, check_catalog, load_catalog, parse_catalog

GOOD = {"id": "a", "channels": ["sms"], "value": 10}


def test_shipped_catalog_is_valid_and_uses_every_field_kind():
    catalog = load_catalog(ACTIONS_FILE)
    assert len(catalog) >= 8
    assert {c for a in catalog for c in a.channels} >= {"sms", "email", "web", "pos", "guide", "paid_ads"}
    assert any(a.eligibility for a in catalog) and any(a.purpose == "service" for a in catalog)
    assert any(a.treatments for a in catalog) and any(a.caps.per_person for a in catalog)
    assert any(a.valid_from for a in catalog)


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
        ({**GOOD, "id": "x", "eligibility": "no_such_feature > 1"},
         r"'x': field 'eligibility' unknown names \['no_such_feature'\]"),
        ({**GOOD, "id": "x", "eligibility": "__import__('os')"}, "'x': field 'eligibility' Call is not allowed"),
        ({**GOOD, "id": "x", "eligibility": "churn_score.real > 1"}, "'x': field 'eligibility' Attribute"),
        ({**GOOD, "id": "x", "purpose": "spam"}, "'x': field 'purpose' must be one of"),
        ({**GOOD, "id": "x", "treatments": {"email": {}}}, "'x': field 'treatments' names channel 'email'"),
        ({**GOOD, "id": "x", "treatments": {"sms": {"placements": "top"}}}, "'x': field 'treatments.sms.placements'"),
        ({**GOOD, "id": "x", "valid_from": "2026-02-01", "valid_to": "2026-01-01"}, "'x': field 'valid_to' must be after"),
        ({**GOOD, "id": "x", "valid_from": "soon"}, "'x': field 'valid_from' has invalid date"),
        ({**GOOD, "id": "x", "caps": {"per_person": -1}}, "'x': field 'per_person' must be >= 0"),
        ({**GOOD, "id": "x", "caps": {"per_person": 1.5}}, "'x': field 'per_person' has invalid value"),
        ({**GOOD, "id": "x", "caps": {"weekly": 3}}, r"'x': field 'caps' has unknown keys \['weekly'\]"),
        ({**GOOD, "id": "x", "source": "magic"}, "'x': field 'source'"),
    ],
)
def test_invalid_catalog_entries_name_action_and_field(entry, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog({"actions": [entry]})


def test_duplicate_action_ids_are_rejected():
    with pytest.raises(CatalogError, match="duplicate id"):
        parse_catalog({"actions": [GOOD, GOOD]})


def test_all_errors_are_collected_in_one_pass():
    actions, errors = check_catalog({"actions": [
        GOOD,
        {"id": "b", "channels": ["fax"], "value": 1},
        {"id": "c", "channels": ["sms"], "value": 1, "eligibility": "nope > 1", "purpose": "spam"},
    ]})
    assert [a.id for a in actions] == ["a"]
    assert len(errors) == 3 and "'b'" in errors[0] and all("'c'" in e for e in errors[1:])


def test_validity_window_and_treatments_are_parsed():
    (action,) = parse_catalog({"actions": [{
        **GOOD, "channels": ["web", "sms"], "valid_from": "2026-01-01", "valid_to": "2026-02-01",
        "treatments": {"web": {"placements": ["home_hero"], "template": "t1"}},
        "caps": {"per_person": 1, "per_person_days": 14, "daily": 100},
    }]})
    assert action.is_valid_at(datetime(2026, 1, 15, tzinfo=UTC))
    assert not action.is_valid_at(datetime(2026, 2, 1, tzinfo=UTC))
    assert action.treatment("web").placements == ("home_hero",) and action.treatment("sms").placements == ()
    assert (action.caps.per_person, action.caps.per_person_days, action.caps.daily) == (1, 14, 100)


def test_catalog_check_command(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["catalog", "check"])
    assert ok.exit_code == 0, ok.output
    assert "catalog ok" in ok.output
    bad = tmp_path / "actions.yaml"
    bad.write_text(yaml.safe_dump({"actions": [{"id": "x", "channels": ["sms"], "value": 1,
                                                "eligibility": "recency_days > 3 and mystery > 1"}]}))
    result = runner.invoke(app, ["catalog", "check", "--path", str(bad)])
    assert result.exit_code == 2
    assert "action 'x': field 'eligibility' unknown names ['mystery']" in result.output
