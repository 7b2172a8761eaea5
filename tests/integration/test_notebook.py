"""notebooks/data_scientist.ipynb runs end to end on the session's tiny world.

nbformat/nbclient are not installed here, so the test reads the .ipynb JSON and exec()s its code cells in
order in one namespace (what a kernel does, minus the display). It runs on a copy of the world's state
folder, so the churn version it trains does not move the shared world's champion.
"""

from __future__ import annotations

import json
import shutil

import pytest

from config import PROJECT_ROOT, load_settings

pytestmark = pytest.mark.integration
NOTEBOOK = PROJECT_ROOT / "notebooks" / "data_scientist.ipynb"


def test_notebook_trains_compares_and_inspects(world, tmp_path, monkeypatch):
    settings, _ = world
    home = tmp_path / "home"
    shutil.copytree(settings.home, home, ignore=shutil.ignore_patterns("logs", "*.db-wal", "*.db-shm"))
    monkeypatch.setenv("NBA_HOME", str(home))
    monkeypatch.setenv("NBA_NOTEBOOK_TRIALS", "3")
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    namespace: dict = {"__name__": "__notebook__"}
    for i, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
        exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}[code {i}]", "exec"), namespace)
    assert namespace["settings"].home == home
    assert load_settings().home == home
    result = namespace["result"]
    assert result.name == "churn" and int(result.version) >= 2
    assert len(namespace["comparison"]) >= 2 and "metrics.auc" in namespace["comparison"].columns
    assert namespace["version"] == result.version
    assert namespace["importance"].iloc[0] > 0
    assert namespace["calibration"]["rows"].sum() == len(namespace["heldout"])
    summary = namespace["summary"].set_index("name")
    assert {"churn", "propensity"} <= set(summary.index)
    assert summary.loc["churn", "oracle_ratio"] > 0
