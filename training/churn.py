"""Train the churn model: tuned, calibrated LightGBM vs a scaled logistic regression on the same time split."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from config.settings import Settings
from models.churn import ChurnClassifier
from training.common import TrainResult
from training.datasets import CHURN_HORIZON, churn_training_set, data_window, feature_columns
from training.splits import group_split, time_split
from training.tabular import fit_tuned_calibrated, log_classifier_run
from training.tuning import DEFAULT_TRIALS

NAME = "churn"
SERVICE = "churn_v1"
# the last ~15% of snapshot dates are scored; with the 30-day label gap a larger share leaves too little to learn from
TEST_FRACTION = 0.15
# inner validation for tuning and calibration: a quarter of the persons of the training period (see group_split)
VALID_FRACTION = 0.25
CALIBRATION = "platt"  # monotone: calibrating never changes the AUC


def numeric_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Numeric columns only, missing -> 0: the input of the linear baselines."""
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])]
    return frame[numeric].astype(float).fillna(0.0).to_numpy()


def logistic_baseline(train: pd.DataFrame, test: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Scaled logistic regression on the numeric features: the baseline every tabular model must beat."""
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    baseline.fit(numeric_matrix(train, features), train["label"])
    return baseline.predict_proba(numeric_matrix(test, features))[:, 1]


def split_churn(data: pd.DataFrame, *, seed: int = 0):
    """(outer time split, inner train, inner valid): test = later snapshots, inner valid = some persons."""
    split = time_split(data, ts_col="event_timestamp", test_fraction=TEST_FRACTION, gap=CHURN_HORIZON)
    inner_train, inner_valid = group_split(split.train, group_col="person_id", test_fraction=VALID_FRACTION,
                                           seed=seed)
    return split, inner_train, inner_valid


def train_churn(settings: Settings, events: pd.DataFrame, *, seed: int = 0, n_trials: int = DEFAULT_TRIALS,
                ) -> TrainResult:
    """Build the point-in-time set from Feast, then tune, fit, calibrate, evaluate, log and register."""
    return fit_and_log_churn(settings, churn_training_set(settings, events), data_window(events), seed=seed,
                             n_trials=n_trials)


def fit_and_log_churn(
    settings: Settings, data: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp], *, seed: int = 0,
    n_trials: int = DEFAULT_TRIALS,
) -> TrainResult:
    """Fit on snapshots before the cutoff (minus the 30-day label horizon), score the later ones."""
    split, inner_train, inner_valid = split_churn(data, seed=seed)
    features = feature_columns(data)
    train, test = split.train, split.test
    model, tuned = fit_tuned_calibrated(ChurnClassifier, train, inner_train, inner_valid, features,
                                        n_trials=n_trials, seed=seed, calibration=CALIBRATION)
    scores = model.predict_proba(test[features])
    base_scores = logistic_baseline(train, test, features)
    heldout = pd.DataFrame({"person_id": test["person_id"].astype(str), "event_timestamp": test["event_timestamp"],
                            "label": test["label"].astype(int), "score": scores, "baseline_score": base_scores})
    return log_classifier_run(
        settings, name=NAME, service=SERVICE, model=model, tuned=tuned, calibration=CALIBRATION, test=test,
        features=features, scores=scores, baseline_scores=base_scores, baseline="scaled logistic regression",
        heldout=heldout, window=window, cutoff=split.cutoff, title="churn (30 days), later snapshots",
        params={"seed": seed, "n_train": len(train), "horizon_days": CHURN_HORIZON.days},
        extra_metrics={"test_churn_rate": float(test["label"].mean())},
    )
