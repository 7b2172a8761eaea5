import numpy as np
import pandas as pd
import pytest

from models import NotFittedError, PropensityClassifier
from models.uplift import TLearnerUplift, qini_curve, uplift_metrics


def _randomised_trial(n: int, seed: int):
    """Touches at random; only persons with high ``sensitivity`` respond to them (planted persuadables)."""
    rng = np.random.default_rng(seed)
    sensitivity = rng.normal(size=n)
    loyalty = rng.normal(size=n)
    treated = rng.random(n) < 0.4
    p = 1 / (1 + np.exp(-(-2.0 + 1.2 * loyalty + treated * np.where(sensitivity > 0.5, 2.0, 0.0))))
    y = (rng.random(n) < p).astype(int)
    return pd.DataFrame({"sensitivity": sensitivity, "loyalty": loyalty}), treated.astype(int), y


def test_t_learner_finds_persuadables_better_than_random(tmp_path):
    X, t, y = _randomised_trial(12_000, seed=0)
    model = TLearnerUplift(n_estimators=80, seed=0).fit(X.iloc[:8000], t[:8000], y[:8000])
    score = model.predict_uplift(X.iloc[8000:])
    metrics = uplift_metrics(y[8000:], t[8000:], score)
    assert metrics["qini_coefficient"] > 0.02 and metrics["auuc"] > metrics["auuc_random"]
    assert metrics["uplift_top30"] > 2 * metrics["uplift_all"]
    # the ranking follows the planted effect, not the loyalty that makes people buy anyway
    assert np.corrcoef(score, X["sensitivity"].iloc[8000:])[0, 1] > 0.5
    loaded = TLearnerUplift.load(model.save(tmp_path / "u"))
    np.testing.assert_array_equal(loaded.predict_uplift(X.iloc[8000:]), score)


def test_qini_curve_on_a_hand_example():
    # two treated buyers ranked first, then an untreated non-buyer and an untreated buyer
    share, qini = qini_curve([1, 1, 0, 1], [1, 1, 0, 0], [4, 3, 2, 1])
    assert share.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert qini.tolist() == [1.0, 2.0, 2.0, 2.0 - 1 * 2 / 2]
    assert uplift_metrics([1, 0], [1, 1], [0.2, 0.1]) == {}


def test_propensity_carries_uplift_and_keeps_predict_proba(tmp_path):
    rng = np.random.default_rng(1)
    n = 2000
    frame = pd.DataFrame({"action_id": rng.choice(["a", "b"], n), "channel": rng.choice(["sms", "app"], n),
                          "sensitivity": rng.normal(size=n), "loyalty": rng.normal(size=n)})
    y = (rng.random(n) < np.where(frame["action_id"] == "a", 0.3, 0.1)).astype(int)
    model = PropensityClassifier(n_estimators=30, n_jobs=1, seed=0).fit(frame, y)
    with pytest.raises(NotFittedError, match="uplift"):
        model.predict_uplift(frame)
    before = model.predict_proba(frame)
    X, t, yy = _randomised_trial(4000, seed=2)
    model.attach_uplift(TLearnerUplift(n_estimators=30, seed=0).fit(X, t, yy))
    loaded = PropensityClassifier.load(model.save(tmp_path / "p"))
    np.testing.assert_array_equal(loaded.predict_proba(frame), before)
    np.testing.assert_array_equal(loaded.predict_uplift(frame), model.predict_uplift(frame))
