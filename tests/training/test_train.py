"""Integration: train on a synthetic lake with a real Feast store and a real MLflow registry (tmp)."""

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from features.engineering import build_feature_snapshots, snapshot_dates, write_feature_tables
from features.store import apply
from training import list_models, load_champion, train_all
from training.datasets import churn_training_set

pytestmark = pytest.mark.integration


@pytest.fixture
def feast_settings(settings, events):
    frames = build_feature_snapshots(events, snapshot_dates(events.ts.min(), events.ts.max()))
    write_feature_tables(frames, settings.features_dir)
    apply(settings)
    return settings


def test_train_all_registers_champions_that_reload(feast_settings, events):
    lines = []
    results = train_all(feast_settings, events, seed=0, echo=lines.append)
    assert [r.name for r in results] == ["churn", "propensity", "recommender", "budget_bandit"]
    assert len(lines) == 4 and lines[0].startswith("[1/4] churn v1: auc=")
    by_name = {r.name: r for r in results}
    # planted structure the models must find better than their baselines
    assert by_name["recommender"].value > by_name["recommender"].baseline_value
    assert by_name["budget_bandit"].value > by_name["budget_bandit"].baseline_value
    assert by_name["propensity"].value > 0.55

    listed = {row["name"]: row for row in list_models(feast_settings)}
    assert set(listed) == set(by_name)
    assert listed["churn"]["aliases"] == ["champion"] and listed["churn"]["metric"] == "auc"
    assert listed["recommender"]["value"] == pytest.approx(by_name["recommender"].value, abs=1e-6)

    client = MlflowClient()
    churn_version = client.get_model_version("churn", by_name["churn"].version)
    assert churn_version.tags["feature_service"] == "churn_v1"
    assert {"data_start", "data_end", "baseline_value"} <= set(churn_version.tags)
    run = client.get_run(by_name["churn"].run_id)
    assert "baseline_auc" in run.data.metrics and "data_start" in run.data.params
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"feature_names.json", "churn_auc.png"} <= artifacts

    model, version = load_champion(feast_settings, "churn")
    assert version == by_name["churn"].version
    data = churn_training_set(feast_settings, events)
    predictor = model.unwrap_python_model().predictor
    features = predictor.feature_names_
    np.testing.assert_array_equal(np.asarray(model.predict(data[features].astype(
        {c: float for c in features if pd.api.types.is_integer_dtype(data[c])}))),
        predictor.predict_proba(data[features]))

    bandit, _ = load_champion(feast_settings, "budget_bandit")
    shares = bandit.predict(pd.DataFrame({"x": [0]}))
    assert shares.set_index("channel")["share"].idxmax() == "app"  # planted best channel
