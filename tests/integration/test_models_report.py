"""`nba models report --json` on the session's tiny world: metrics vs baseline and vs the simulator's oracle."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

pytestmark = pytest.mark.integration


def test_report_has_baselines_and_oracle_ratios(world):
    result = CliRunner().invoke(app, ["models", "report", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"churn", "propensity"} <= set(rows)
    for name in ("churn", "propensity"):
        row = rows[name]
        oracle = row["oracle"]
        assert oracle["n_matched"] > 0.9 * oracle["n_heldout"], oracle
        assert 0.5 < oracle["oracle_auc"] <= 1.0
        # the oracle ranks by the true probabilities: no model trained on features beats it by much
        assert 0.5 < oracle["oracle_ratio"] < 1.05
        assert oracle["auc_on_matched"] == pytest.approx(row["value"], abs=0.02)
        assert {"brier", "baseline_brier", "ece", "baseline_ece"} <= set(row["metrics"])
    assert rows["propensity"]["oracle"]["per_action"]
    assert "uplift_qini_coefficient" in rows["propensity"]["metrics"]
    text = CliRunner().invoke(app, ["models", "report"])
    assert text.exit_code == 0 and "oracle AUC" in text.stdout
