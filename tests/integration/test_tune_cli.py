"""`nba tune churn` on the session's tiny world: a shared SQLite study that resumes, best params in MLflow."""

from __future__ import annotations

import mlflow
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

pytestmark = pytest.mark.integration


def test_tune_resumes_a_shared_study_and_logs_best_params(world):
    settings, _ = world
    runner = CliRunner()
    first = runner.invoke(app, ["tune", "churn", "--trials", "2", "--study", "test-study"])
    assert first.exit_code == 0, first.output
    assert "2 trials in total" in first.stdout
    second = runner.invoke(app, ["tune", "churn", "--trials", "2", "--study", "test-study"])
    assert second.exit_code == 0 and "4 trials in total" in second.stdout
    assert (settings.home / "optuna.db").exists()
    runs = mlflow.search_runs(experiment_names=["nba"], filter_string="tags.model = 'tune_churn'")
    assert len(runs) >= 2 and "params.best_learning_rate" in runs.columns
    assert runner.invoke(app, ["tune", "recommender"]).exit_code == 2
