"""One-ID measured against ground truth: the pair definitions, and the goal on a small simulated world."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.identity import resolve_identities
from features.identity_eval import identity_report
from features.identity_graph import IdentityGraph

SALT = b"id-test-salt"


def _events(id_lists: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({"event_id": [f"e{i}" for i in range(len(id_lists))],
                         "ts": pd.date_range("2026-01-01", periods=len(id_lists), freq="D", tz="UTC"),
                         "identifiers": [json.dumps(d) for d in id_lists]})


def test_pairs_over_identifiers_with_shared_ones_left_out():
    events = _events([
        {"member_id": "M1", "cookie_id": "C1"},
        {"member_id": "M2", "cookie_id": "C2"},
        {"member_id": "M1", "device_id": "TAB"}, {"member_id": "M2", "device_id": "TAB"},   # family tablet
        {"cookie_id": "C3"},                                 # M2's cookie, never seen with a login
    ])
    identity = resolve_identities(events)
    truth = pd.DataFrame([
        ("member_id", "M1", "A"), ("cookie_id", "C1", "A"),
        ("member_id", "M2", "B"), ("cookie_id", "C2", "B"), ("cookie_id", "C3", "B"),
        ("device_id", "TAB", "A"), ("device_id", "TAB", "B"),      # shared in truth: left out
        ("member_id", "M9", "C"),                                  # never seen in the lake: left out
    ], columns=["id_type", "id_value", "person_key"])
    report = identity_report(identity, truth, SALT, graph=IdentityGraph.from_events(events))
    assert report["identifiers_shared_in_truth"] == 1 and report["identifiers_shared_predicted"] == 1
    # units: M1, C1 (A); M2, C2, C3 (B)
    assert report["identifiers_evaluated"] == 5
    assert report["pairs_true"] == 1 + 3 and report["pairs_predicted"] == 1 + 1
    assert report["precision"] == 1.0 and report["recall"] == pytest.approx(2 / 4)
    assert report["over_merged_persons"] == 0 and report["under_merged_persons"] == 1
    assert report["recall_ceiling"] == pytest.approx(2 / 4) and report["recall_linkable"] == 1.0


def test_over_merge_is_counted():
    identity = resolve_identities(_events([{"member_id": "M1", "cookie_id": "C1"},
                                           {"member_id": "M1", "pos_card": "K"}]))
    truth = pd.DataFrame([("member_id", "M1", "A"), ("cookie_id", "C1", "A"), ("pos_card", "K", "B")],
                         columns=["id_type", "id_value", "person_key"])
    report = identity_report(identity, truth, SALT)
    assert report["precision"] == pytest.approx(1 / 3) and report["recall"] == 1.0
    assert report["over_merged_persons"] == 1


def test_cli_report_on_a_small_world(tmp_path, monkeypatch):
    """simulate → ingest → resolve → report --json on 400 customers: precision goal, every linkable pair."""
    from pipelines.cli import app

    monkeypatch.setenv("NBA_HOME", str(tmp_path))
    runner = CliRunner()
    for args in (["simulate", "--customers", "400", "--days", "60", "--seed", "3"], ["ingest"],
                 ["identity", "resolve"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["identity", "report", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["precision"] >= 0.995
    assert report["recall_linkable"] >= 0.98
    assert 0.0 < report["recall"] <= report["recall_ceiling"] + 1e-9
