"""On the demo's default world every registered champion beats its baseline, as `nba models list --json` shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import PROJECT_ROOT, load_settings

pytestmark = pytest.mark.integration


def test_default_world_models_beat_their_baselines(tmp_path, monkeypatch):
    monkeypatch.setenv("NBA_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = load_settings("embedded")
    w = settings.world
    nba = Path(sys.executable).with_name("nba")
    env = {**os.environ, "NBA_HOME": str(tmp_path)}
    steps = [["simulate", "--customers", str(w.customers), "--days", str(w.days), "--seed", str(w.seed)],
             ["ingest"], ["identity", "resolve"], ["features", "build"], ["features", "apply"],
             ["features", "materialize"], ["train", "all"]]
    for step in steps:
        done = subprocess.run([str(nba), *step], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"nba {' '.join(step)} failed:\n{done.stderr[-3000:]}"
    listed = subprocess.run([str(nba), "models", "list", "--json"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, check=True)
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {"churn", "propensity", "recommender", "budget_bandit"}
    for name, row in rows.items():
        assert "champion" in row["aliases"], name
        assert row["value"] > row["baseline_value"], f"{name}: {row['metric']} {row['value']} <= {row['baseline_value']}"
