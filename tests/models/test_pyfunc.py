"""Round trip of every model through a real local MLflow (sqlite tracking in tmp_path)."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models import (
    ChurnClassifier,
    MatrixFactorizationRecommender,
    PropensityClassifier,
    ThompsonBudgetAllocator,
    pyfunc_for,
)
from models.pyfunc import signature_for


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = MlflowClient(uri).create_experiment("t", artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    yield uri
    mlflow.set_tracking_uri(None)


def _round_trip(predictor, name, example, tmp_path):
    wrapper, artifacts = pyfunc_for(predictor, tmp_path)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name=name, python_model=wrapper, artifacts=artifacts, input_example=example,
            signature=signature_for(wrapper, example), registered_model_name=name,
            pip_requirements=["mlflow"],
        )
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", info.registered_model_version)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert type(loaded.unwrap_python_model().predictor) is type(predictor)
    return loaded


def test_classifiers_round_trip(tracking, tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame({
        "action_id": rng.choice(["a", "b"], n), "channel": rng.choice(["sms", "app"], n),
        "recency_days": rng.exponential(10, n), "lifecycle_stage": rng.choice(["new", "active"], n),
    })
    y = (X["recency_days"] + 5 * (X["action_id"] == "a") + rng.normal(0, 3, n) > 12).astype(int)
    for cls, name in ((ChurnClassifier, "churn"), (PropensityClassifier, "propensity")):
        model = cls(n_estimators=20).fit(X, y)
        loaded = _round_trip(model, name, X.head(5), tmp_path / name)
        expected = model.predict_proba(X)
        np.testing.assert_array_equal(np.asarray(loaded.predict(X)), expected)
        np.testing.assert_array_equal(loaded.unwrap_python_model().predictor.predict_proba(X), expected)
        one = X.head(1)  # the serving case: one row through both paths
        np.testing.assert_array_equal(np.asarray(loaded.predict(one)),
                                      loaded.unwrap_python_model().predictor.predict_proba(one))


def test_recommender_round_trip(tracking, tmp_path):
    rng = np.random.default_rng(1)
    persons = rng.choice([f"P{i}" for i in range(40)], 400)
    items = rng.choice([f"I{i}" for i in range(30)], 400)
    model = MatrixFactorizationRecommender(n_factors=4, epochs=2, loss="softmax", n_negatives=8).fit(persons, items)
    query = pd.DataFrame({"person_id": ["P1", "unknown"], "k": [5, 3]})
    loaded = _round_trip(model, "recommender", query, tmp_path)
    out = loaded.predict(query)
    assert list(out.columns) == ["person_id", "rank", "item_id", "score"]
    assert out[out.person_id == "P1"]["item_id"].tolist() == [i for i, _ in model.recommend("P1", 5)]
    assert out[out.person_id == "unknown"]["item_id"].tolist() == [i for i, _ in model.recommend("x", 3)]
    fast = loaded.unwrap_python_model().predictor
    assert fast.recommend("P2", 4) == model.recommend("P2", 4)
    # the fast path gives exactly the standard pyfunc predictions: same items, ranks and scores
    expected = [(p, rank, item, score) for p, k in (("P1", 5), ("unknown", 3))
                for rank, (item, score) in enumerate(fast.recommend(p, k), start=1)]
    assert list(out.itertuples(index=False, name=None)) == expected


def test_bandit_round_trip(tracking, tmp_path):
    log = pd.DataFrame({"channel": ["sms", "app", "app", "email"] * 50, "reward": [-1.0, 9.0, -1.0, -1.0] * 50,
                        "cost": 1.0})
    model = ThompsonBudgetAllocator(channels=("sms", "email", "app")).fit(log)
    loaded = _round_trip(model, "budget_bandit", pd.DataFrame({"as_of": ["2026-01-01"]}), tmp_path)
    out = loaded.predict(pd.DataFrame({"anything": [1]}))
    assert out["share"].sum() == pytest.approx(1.0)
    assert dict(zip(out["channel"], out["share"], strict=True)) == model.budget_shares(20_000, 0)
    wrapper = loaded.unwrap_python_model()
    assert dict(zip(out["channel"], out["share"], strict=True)) == wrapper.predictor.budget_shares(
        wrapper.n_samples, wrapper.seed)
