"""Train the propensity model: tuned, calibrated LightGBM vs each action's historical conversion rate."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from config.settings import Settings
from models.calibration import expected_calibration_error
from models.propensity import PropensityClassifier
from models.uplift import TLearnerUplift, uplift_metrics
from training.common import TrainResult, auc
from training.datasets import (
    CONVERSION_WINDOW,
    data_window,
    feature_columns,
    load_action_categories,
    propensity_training_set,
    uplift_training_set,
)
from training.splits import time_split
from training.tabular import fit_tuned_calibrated, log_classifier_run
from training.tuning import DEFAULT_TRIALS

NAME = "propensity"
SERVICE = "propensity_v1"
TEST_FRACTION = 0.25
VALID_FRACTION = 0.25
CALIBRATION = "platt"


def action_rate_scores(train: pd.DataFrame, test: pd.DataFrame) -> pd.Series:
    """Baseline score: the action's conversion rate in the training period (overall rate if unseen)."""
    rates = train.groupby("action_id")["label"].mean()
    return test["action_id"].map(rates).fillna(train["label"].mean()).astype(float)


def propensity_model(settings: Settings):
    """The model class as training and tuning build it: with the catalog's action categories (for the
    derived "affinity to this action's category" feature)."""
    return partial(PropensityClassifier, action_categories=load_action_categories(settings.actions_file))


def split_propensity(data: pd.DataFrame):
    """(outer time split, inner train, inner valid): both splits by time, minus the 7-day outcome window."""
    split = time_split(data, ts_col="event_timestamp", test_fraction=TEST_FRACTION, gap=CONVERSION_WINDOW)
    inner = time_split(split.train, ts_col="event_timestamp", test_fraction=VALID_FRACTION, gap=CONVERSION_WINDOW)
    return split, inner.train, inner.test


def per_action_metrics(test: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """AUC and calibration error of each action's touches (actions with both outcomes only for AUC)."""
    out = {}
    for action, idx in test.groupby("action_id").indices.items():
        y = test["label"].to_numpy()[idx]
        out[f"ece_{action}"] = expected_calibration_error(y, scores[idx], bins=5)
        if len(np.unique(y)) > 1:
            out[f"auc_{action}"] = auc(y, scores[idx])
    return out


def fit_uplift(units: pd.DataFrame, person_features: list[str], *, seed: int = 0):
    """T-learner on earlier weeks, Qini/AUUC on later weeks: (model refit on all weeks, metrics)."""
    split = time_split(units, ts_col="event_timestamp", test_fraction=TEST_FRACTION, gap=CONVERSION_WINDOW)
    train, test = split.train, split.test
    held = TLearnerUplift(seed=seed).fit(train[person_features], train["treated"], train["label"])
    metrics = uplift_metrics(test["label"], test["treated"], held.predict_uplift(test[person_features]))
    metrics = {f"uplift_{k}" if not k.startswith("uplift") else k: v for k, v in metrics.items()}
    metrics["uplift_treated_share"] = float(units["treated"].mean())
    model = TLearnerUplift(seed=seed).fit(units[person_features], units["treated"], units["label"])
    return model, metrics


def train_propensity(settings: Settings, events: pd.DataFrame, *, seed: int = 0,
                     n_trials: int = DEFAULT_TRIALS) -> TrainResult:
    """Build the touch-level set from Feast, then tune, fit, calibrate, evaluate, log and register;
    the uplift T-learner (weekly touched vs untouched persons) travels inside the propensity model."""
    return fit_and_log_propensity(settings, propensity_training_set(settings, events), data_window(events),
                                  seed=seed, n_trials=n_trials,
                                  uplift_data=uplift_training_set(settings, events, seed=seed))


def fit_and_log_propensity(
    settings: Settings, data: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp], *, seed: int = 0,
    n_trials: int = DEFAULT_TRIALS, uplift_data: pd.DataFrame | None = None,
) -> TrainResult:
    """Fit on earlier touches (minus the 7-day conversion window), score the later ones.

    With ``uplift_data`` (see :func:`training.datasets.uplift_units`) an uplift model is fitted too and
    attached to the propensity model (``predict_uplift``); its Qini/AUUC are logged with the run.
    """
    split, inner_train, inner_valid = split_propensity(data)
    features = feature_columns(data)
    train, test = split.train, split.test
    model, tuned = fit_tuned_calibrated(propensity_model(settings), train, inner_train, inner_valid, features,
                                        n_trials=n_trials, seed=seed, calibration=CALIBRATION)
    scores = model.predict_proba(test[features])
    base_scores = action_rate_scores(train, test).to_numpy()
    heldout = pd.DataFrame({
        "touch_id": test["touch_id"].astype(str), "person_id": test["person_id"].astype(str),
        "event_timestamp": test["event_timestamp"], "action_id": test["action_id"].astype(str),
        "channel": test["channel"].astype(str), "label": test["label"].astype(int), "score": scores,
        "baseline_score": base_scores})
    uplift_scores: dict[str, float] = {}
    if uplift_data is not None and uplift_data["treated"].nunique() == 2:
        person_features = [c for c in features if c not in PropensityClassifier._forced_categoricals]
        uplift, uplift_scores = fit_uplift(uplift_data, person_features, seed=seed)
        model.attach_uplift(uplift)
    return log_classifier_run(
        settings, name=NAME, service=SERVICE, model=model, tuned=tuned, calibration=CALIBRATION, test=test,
        features=features, scores=scores, baseline_scores=base_scores, baseline="per-action conversion rate",
        heldout=heldout, window=window, cutoff=split.cutoff, title="conversion within 7 days, later touches",
        params={"seed": seed, "n_train": len(train), "conversion_window_days": CONVERSION_WINDOW.days},
        extra_metrics={**per_action_metrics(test, scores), **uplift_scores,
                       "test_conversion_rate": float(test["label"].mean())},
    )
