"""Integration: the MLflow registry edge (real sqlite tracking in tmp): versions, aliases, lookups."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from training import load_champion, train_bandit, train_recommender
from training.churn import fit_and_log_churn
from training.datasets import interactions

pytestmark = pytest.mark.integration


def test_retraining_moves_champion_to_the_new_version(settings, events):
    first = train_recommender(settings, events, seed=0)
    second = train_recommender(settings, events, seed=1)
    assert (first.version, second.version) == ("1", "2")
    _, version = load_champion(settings, "recommender")
    assert version == "2"
    assert str(MlflowClient().get_model_version_by_alias("recommender", "champion").version) == "2"
    assert train_bandit(settings, events).version == "1"
    model, _ = load_champion(settings, "recommender")
    person = interactions(events)["person_id"].iloc[0]
    out = model.predict(pd.DataFrame({"person_id": [person], "k": [4]}))
    assert out["item_id"].tolist() == [i for i, _ in model.unwrap_python_model().predictor.recommend(person, 4)]


def test_load_champion_of_unknown_model_is_a_lookup_error(settings):
    with pytest.raises(LookupError, match="nope"):
        load_champion(settings, "nope")


def test_churn_logging_on_a_ready_made_set(settings):
    rng = np.random.default_rng(0)
    dates = pd.date_range("2026-01-01", periods=12, freq="7D", tz="UTC")
    data = pd.DataFrame({
        "person_id": [f"P{i}" for i in range(100)] * 12,
        "event_timestamp": np.repeat(dates, 100),
        "recency_days": rng.exponential(20, 1200),
        "top_category": rng.integers(0, 10, 1200),
    })
    data["label"] = (data["recency_days"] + rng.normal(0, 8, 1200) > 25).astype(int)
    result = fit_and_log_churn(settings, data, (dates[0], dates[-1] + pd.Timedelta(days=30)))
    assert result.value > 0.7 and result.version == "1"
    assert mlflow.get_tracking_uri() == settings.mlflow_tracking_uri
    assert (settings.mlflow_dir / "artifacts").is_dir()
