import numpy as np
import pandas as pd
import pytest

from models.calibration import fit_calibrator
from serving.scoring import Scorer
from tests.serving.engine_fixtures import NUMERIC, model_set, random_features


def _rows(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = random_features(rng, n)[list(NUMERIC)]
    frame.loc[::7, "monetary_90d"] = np.nan  # missing values go through as NaN
    return frame


@pytest.mark.parametrize("calibrated", [None, "platt", "isotonic"])
def test_scores_equal_the_models_own_predict_proba(calibrated):
    """The fast path (direct booster call, hand-built rows) must give what the model itself gives:
    same iterations and the same calibration, or the served propensities drift from the registered model."""
    base = model_set(0)
    propensity, churn = base.propensity, base.churn
    frame = _rows()
    actions = np.resize(["coupon", "survey", "never-seen"], len(frame))
    channels = np.resize(["sms", "web", "email", "pos"], len(frame))
    saved = propensity.calibrator_, churn.calibrator_
    try:
        if calibrated:
            rng = np.random.default_rng(1)
            for model in (propensity, churn):
                model.calibrator_ = fit_calibrator(rng.random(200), rng.random(200) < 0.3, calibrated)
        scorer = Scorer(propensity)
        rows = np.vstack([scorer.person_vector(r) for r in frame.to_dict("records")])
        expected = propensity.predict_proba(frame.assign(action_id=actions, channel=channels))
        np.testing.assert_allclose(scorer.predict(rows, list(actions), list(channels)), expected, rtol=1e-12)
        churn_scorer = Scorer(churn)
        np.testing.assert_allclose(churn_scorer.predict(churn_scorer.person_matrix(frame)),
                                   churn.predict_proba(frame), rtol=1e-12)
        many = pd.concat([frame] * 3, ignore_index=True)   # past the small-input path
        np.testing.assert_allclose(churn_scorer.predict(churn_scorer.person_matrix(many)),
                                   churn.predict_proba(many), rtol=1e-12)
    finally:
        propensity.calibrator_, churn.calibrator_ = saved


def test_person_vector_reads_numbers_and_maps_the_rest_to_nan():
    scorer = Scorer(model_set(0).churn)
    features = {"recency_days": 3, "tenure_days": None, "orders_total": True, "monetary_90d": "12.5",
                "events_30d": "not a number"}
    row = scorer.person_vector(features)
    by_name = dict(zip(scorer.names, row, strict=True))
    assert by_name["recency_days"] == 3.0 and by_name["orders_total"] == 1.0 and by_name["monetary_90d"] == 12.5
    assert np.isnan(by_name["tenure_days"]) and np.isnan(by_name["events_30d"])
    assert np.isnan(scorer.person_vector(None)).all()


def test_scores_with_derived_features_equal_predict_proba():
    """A propensity model with derived features (open rate of the candidate's channel, affinity to the
    action's category): the served path appends them the model's own way, for seen and unseen keys."""
    from models.propensity import PropensityClassifier

    rng = np.random.default_rng(5)
    n = 2000
    frame = pd.DataFrame({"affinity_apparel": rng.random(n), "sms_open_rate_smoothed": rng.random(n),
                          "email_open_rate_smoothed": rng.random(n), "email_session_share": rng.random(n)})
    frame.loc[::5, "sms_open_rate_smoothed"] = np.nan
    actions = rng.choice(["coupon", "new_arrivals"], n)
    channels = rng.choice(["sms", "email", "web"], n)
    y = (rng.random(n) < 0.1 + 0.4 * frame["affinity_apparel"] * (actions == "new_arrivals")).astype(int)
    model = PropensityClassifier(n_estimators=20, num_leaves=7, seed=0, n_jobs=1,
                                 action_categories={"new_arrivals": "apparel"})
    model.fit(frame.assign(action_id=actions, channel=channels), y)
    model.calibrator_ = fit_calibrator(rng.random(200), rng.random(200) < 0.3, "platt")
    assert len(model.derived_) == 3
    scorer = Scorer(model)
    people = frame.iloc[:30]
    rows = np.vstack([scorer.person_vector(r) for r in people.to_dict("records")])
    cand_actions = list(np.resize(["coupon", "new_arrivals", "never-seen"], len(people)))
    cand_channels = list(np.resize(["sms", "email", "web", "pos"], len(people)))
    expected = model.predict_proba(people.assign(action_id=cand_actions, channel=cand_channels))
    np.testing.assert_allclose(scorer.predict(rows, cand_actions, cand_channels), expected, rtol=1e-12)
