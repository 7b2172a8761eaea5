import numpy as np
import pandas as pd
import pytest

from models import ChurnClassifier
from training.splits import group_split, stratified_split
from training.tuning import tune_classifier


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1] * x[:, 2])))).astype(int)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y,
                         "person_id": [f"P{i % (n // 3)}" for i in range(n)]})


def test_tuning_is_seeded_and_a_shared_study_resumes(tmp_path):
    data = _frame(1500, seed=0)
    train, valid = stratified_split(data, label_col="label", test_fraction=0.3, seed=0)
    kwargs = {"n_trials": 3, "seed": 0}
    first = tune_classifier(ChurnClassifier, train, valid, ["a", "b", "c"], **kwargs)
    again = tune_classifier(ChurnClassifier, train, valid, ["a", "b", "c"], **kwargs)
    assert first.params == again.params and first.value == again.value > 0.7
    assert 1 <= first.params["n_estimators"] <= 600 and first.n_trials == 3

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    one = tune_classifier(ChurnClassifier, train, valid, ["a", "b", "c"], storage=storage, study_name="s", **kwargs)
    two = tune_classifier(ChurnClassifier, train, valid, ["a", "b", "c"], storage=storage, study_name="s", **kwargs)
    assert (one.n_trials, two.n_trials) == (3, 6) and two.value >= one.value
    with pytest.raises(ValueError, match="n_trials"):
        tune_classifier(ChurnClassifier, train, valid, ["a"], n_trials=0)


def test_group_split_keeps_each_person_on_one_side():
    data = _frame(300, seed=1)
    train, valid = group_split(data, group_col="person_id", test_fraction=0.25, seed=0)
    assert len(train) + len(valid) == len(data)
    assert not set(train["person_id"]) & set(valid["person_id"])
    assert 0.15 < len(valid) / len(data) < 0.35
