import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models import ChurnClassifier, NotFittedError, PropensityClassifier


def _person_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    recency = rng.exponential(20, n)
    freq = rng.poisson(3, n).astype(float)
    stage = rng.choice(["new", "active", "lapsing"], n)
    logit = 0.08 * recency - 0.6 * freq + np.where(stage == "lapsing", 1.5, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"recency_days": recency, "frequency_30d": freq, "lifecycle_stage": stage,
                          "noise": rng.normal(size=n)})
    return frame, y


def test_churn_beats_chance_on_separable_data():
    X, y = _person_frame(3000, seed=1)
    model = ChurnClassifier(n_estimators=60, seed=0).fit(X.iloc[:2000], y[:2000])
    proba = model.predict_proba(X.iloc[2000:])
    assert proba.shape == (1000,)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert roc_auc_score(y[2000:], proba) > 0.75
    assert model.feature_names_ == ["recency_days", "frequency_30d", "lifecycle_stage", "noise"]
    assert model.categories_ == {"lifecycle_stage": ["active", "lapsing", "new"]}


def test_churn_reads_columns_by_name_and_is_deterministic():
    X, y = _person_frame(800, seed=2)
    a = ChurnClassifier(n_estimators=20, seed=3).fit(X, y)
    b = ChurnClassifier(n_estimators=20, seed=3).fit(X, y)
    shuffled = X[list(reversed(X.columns))].assign(extra=1.0)
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(shuffled))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_constructor_stores_params_unchanged_and_predict_checks_fitted():
    model = ChurnClassifier(n_estimators=7, learning_rate=0.3)
    assert model.get_params()["n_estimators"] == 7 and model.learning_rate == 0.3
    with pytest.raises(NotFittedError, match="fit"):
        model.predict_proba(pd.DataFrame({"a": [1.0]}))


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (pd.DataFrame({"a": [1.0, 2.0]}), [0, 0], "both classes"),
        (pd.DataFrame({"a": [1.0, 2.0]}), [0, 2], "0/1"),
        (pd.DataFrame({"a": [1.0, 2.0]}), [0, 1, 1], "rows"),
        (np.zeros((2, 1)), [0, 1], "DataFrame"),
    ],
)
def test_churn_rejects_bad_input(X, y, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ChurnClassifier(n_estimators=2).fit(X, y)


def test_churn_missing_feature_is_named():
    X, y = _person_frame(300, seed=4)
    model = ChurnClassifier(n_estimators=5).fit(X, y)
    with pytest.raises(ValueError, match="recency_days"):
        model.predict_proba(X.drop(columns=["recency_days"]))


def _touch_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    actions = rng.choice(["discount_10", "new_arrivals", "vip_event"], n)
    channels = rng.choice(["sms", "email", "app"], n)
    affinity = rng.random(n)
    base = {"discount_10": 0.25, "new_arrivals": 0.05, "vip_event": 0.02}
    chan = {"sms": 0.0, "email": -0.02, "app": 0.1}
    p = np.array([base[a] for a in actions]) + np.array([chan[c] for c in channels]) + 0.3 * affinity
    y = (rng.random(n) < np.clip(p, 0, 1)).astype(int)
    return pd.DataFrame({"action_id": actions, "channel": channels, "affinity_apparel": affinity}), y


def test_propensity_beats_chance_and_handles_unseen_categories():
    X, y = _touch_frame(6000, seed=5)
    model = PropensityClassifier(n_estimators=80, seed=0).fit(X.iloc[:4000], y[:4000])
    proba = model.predict_proba(X.iloc[4000:])
    assert roc_auc_score(y[4000:], proba) > 0.65
    assert model.categories_["action_id"] == ["discount_10", "new_arrivals", "vip_event"]
    novel = pd.DataFrame({"action_id": ["brand_new_action"], "channel": ["pos"], "affinity_apparel": [0.5]})
    p = model.predict_proba(novel)
    assert p.shape == (1,) and 0 < p[0] < 1


def test_propensity_codes_do_not_depend_on_batch():
    X, y = _touch_frame(2000, seed=6)
    model = PropensityClassifier(n_estimators=30).fit(X, y)
    batch = model.predict_proba(X.iloc[:50])
    one_by_one = np.array([model.predict_proba(X.iloc[[i]])[0] for i in range(50)])
    np.testing.assert_allclose(batch, one_by_one)


def test_propensity_requires_action_and_channel():
    X, y = _touch_frame(200, seed=7)
    with pytest.raises(ValueError, match="channel"):
        PropensityClassifier(n_estimators=2).fit(X.drop(columns=["channel"]), y)


def test_save_load_round_trip_is_exact(tmp_path):
    X, y = _touch_frame(1500, seed=8)
    model = PropensityClassifier(n_estimators=25).fit(X, y)
    loaded = PropensityClassifier.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(model.predict_proba(X), loaded.predict_proba(X))
    with pytest.raises(ValueError, match="PropensityClassifier"):
        ChurnClassifier.load(tmp_path / "m")


def test_awkward_column_names_fit_predict_and_round_trip(tmp_path):
    from models._lgbm import booster_feature_names

    X, y = _person_frame(1500, seed=4)
    X.columns = ["recency days (%)", "fréquence 30d", "会员 等级", "a{b}:\"c\""]
    X["recency_days__"] = X["recency days (%)"] * 2  # cleans to the same name as the first column
    assert len(set(booster_feature_names(X.columns))) == X.shape[1]
    model = ChurnClassifier(n_estimators=40, n_jobs=1, seed=0).fit(X, y)
    assert model.feature_names_ == list(X.columns)
    assert set(model.feature_importance()) == set(X.columns)
    loaded = ChurnClassifier.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_early_stopping_keeps_best_iteration_and_calibration_round_trips(tmp_path):
    X, y = _person_frame(3000, seed=5)
    model = ChurnClassifier(n_estimators=500, learning_rate=0.2, n_jobs=1, seed=0).fit(
        X.iloc[:1500], y[:1500], eval_set=(X.iloc[1500:2200], y[1500:2200]), early_stopping_rounds=20)
    assert 1 <= model.best_iteration_ < 500
    raw = model.predict_raw(X.iloc[2200:])
    model.calibrate(X.iloc[1500:2200], y[1500:2200], "platt")
    calibrated = model.predict_proba(X.iloc[2200:])
    assert not np.allclose(raw, calibrated)
    # Platt scaling is monotone: the ranking (AUC) does not change
    assert roc_auc_score(y[2200:], calibrated) == pytest.approx(roc_auc_score(y[2200:], raw), abs=1e-12)
    loaded = ChurnClassifier.load(model.save(tmp_path / "cal"))
    np.testing.assert_array_equal(loaded.predict_proba(X.iloc[2200:]), calibrated)
    assert loaded.calibrator_.method == "platt" and loaded.best_iteration_ == model.best_iteration_
    model.fit(X.iloc[:500], y[:500])  # refitting drops the old calibration
    assert model.calibrator_ is None


def test_churn_score_never_falls_as_the_activity_forecast_of_no_order_rises(tmp_path):
    rng = np.random.default_rng(5)
    n = 4000
    p_no = rng.uniform(0, 1, n)
    other = rng.normal(size=n)
    # a bump the trees would chase: the label rate dips in the middle of the forecast's range
    rate = np.clip(p_no - 0.6 * np.exp(-((p_no - 0.6) / 0.08) ** 2) + 0.2 * other, 0.02, 0.98)
    X = pd.DataFrame({"activity_p_no_order_30d": p_no, "other": other})
    y = (rng.random(n) < rate).astype(int)
    grid = pd.DataFrame({"activity_p_no_order_30d": np.linspace(0, 1, 201), "other": 0.0})
    free = ChurnClassifier(n_estimators=80, num_leaves=15, min_child_samples=10)
    free._monotone = {}
    assert (np.diff(free.fit(X, y).predict_proba(grid)) < -1e-9).any()  # unconstrained, the dip shows
    model = ChurnClassifier(n_estimators=80, num_leaves=15, min_child_samples=10).fit(X, y)
    assert (np.diff(model.predict_proba(grid)) >= -1e-12).all()
    loaded = ChurnClassifier.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_proba(grid), model.predict_proba(grid))


def _engagement_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Touches whose conversion depends on the person's open rate *on the touch's channel* and affinity
    to *the action's category*: what the derived features hand the trees directly."""
    rng = np.random.default_rng(seed)
    X, _ = _touch_frame(n, seed)
    X["affinity_beauty"] = rng.random(n)
    for channel in ("sms", "email", "app"):
        X[f"{channel}_open_rate_smoothed"] = rng.random(n)
    X.loc[::11, "email_open_rate_smoothed"] = np.nan
    own_rate = X.apply(lambda r: r[f"{r['channel']}_open_rate_smoothed"], axis=1).fillna(0.0)
    own_affinity = np.where(X["action_id"] == "new_arrivals", X["affinity_apparel"], 0.5)
    y = (rng.random(n) < 0.05 + 0.3 * own_rate * own_affinity).astype(int)
    return X, y


def test_propensity_derives_the_rows_channel_rate_and_action_category_affinity(tmp_path):
    X, y = _engagement_frame(3000, seed=9)
    categories = {"new_arrivals": "apparel", "beauty_bundle": "beauty", "discount_10": "no_such_category"}
    model = PropensityClassifier(n_estimators=40, seed=0, action_categories=categories).fit(X, y)
    assert model.derived_ == {
        "candidate_channel_open_rate_smoothed": (
            "channel", {c: f"{c}_open_rate_smoothed" for c in ("app", "email", "sms")}),
        # beauty_bundle was never touched, discount_10's category has no affinity column: neither gets one
        "candidate_action_affinity": ("action_id", {"new_arrivals": "affinity_apparel"}),
    }
    assert model.get_params()["action_categories"] == categories

    odd = pd.DataFrame({"action_id": ["vip_event", "new_arrivals"], "channel": ["pos", None],
                        "affinity_apparel": [0.3, 0.4]})
    rows = pd.concat([X.iloc[:6], odd], ignore_index=True)
    matrix = model._encode(rows)
    derived = pd.DataFrame(matrix[:, -2:], columns=list(model.derived_))
    for i, r in rows.iterrows():
        channel_rate = r.get(f"{r['channel']}_open_rate_smoothed", np.nan) if r["channel"] else np.nan
        affinity = r["affinity_apparel"] if r["action_id"] == "new_arrivals" else np.nan
        np.testing.assert_equal(derived.loc[i, "candidate_channel_open_rate_smoothed"], channel_rate)
        np.testing.assert_equal(derived.loc[i, "candidate_action_affinity"], affinity)
    assert set(model.feature_importance()) == set(X.columns) | set(model.derived_)

    loaded = PropensityClassifier.load(model.save(tmp_path / "m"))
    assert loaded.derived_ == model.derived_ and loaded.action_categories == categories
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_propensity_derived_features_lift_auc_over_the_same_inputs_without_them():
    X, y = _engagement_frame(8000, seed=10)
    train, test = slice(0, 6000), slice(6000, None)
    scores = {}
    for derive in (True, False):
        model = PropensityClassifier(n_estimators=60, num_leaves=7, seed=0,
                                     action_categories={"new_arrivals": "apparel"})
        if not derive:
            model._derived_features = dict
        model.fit(X.iloc[train], y[train])
        scores[derive] = roc_auc_score(y[test], model.predict_proba(X.iloc[test]))
    assert scores[True] > scores[False] + 0.01, scores


def test_propensity_refuses_an_input_named_like_a_derived_feature():
    X, y = _engagement_frame(500, seed=11)
    X["candidate_channel_open_rate_smoothed"] = 0.0
    with pytest.raises(ValueError, match="candidate_channel_open_rate_smoothed"):
        PropensityClassifier(n_estimators=2).fit(X, y)
