"""Train the propensity model: LightGBM vs each action's historical conversion rate."""

from __future__ import annotations

import pandas as pd

from config.settings import Settings
from models.propensity import PropensityClassifier
from training.common import TrainResult, auc, finish, float_example, roc_figure, training_run, window_tags
from training.datasets import data_window, feature_columns, propensity_training_set
from training.splits import time_split

NAME = "propensity"
SERVICE = "propensity_v1"
PARAMS = {"n_estimators": 150, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 40}


def action_rate_scores(train: pd.DataFrame, test: pd.DataFrame) -> pd.Series:
    """Baseline score: the action's conversion rate in the training period (overall rate if unseen)."""
    rates = train.groupby("action_id")["label"].mean()
    return test["action_id"].map(rates).fillna(train["label"].mean()).astype(float)


def train_propensity(settings: Settings, events: pd.DataFrame, *, seed: int = 0) -> TrainResult:
    """Build the touch-level set from Feast, then fit, evaluate, log and register."""
    return fit_and_log_propensity(settings, propensity_training_set(settings, events), data_window(events),
                                  seed=seed)


def fit_and_log_propensity(
    settings: Settings, data: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp], *, seed: int = 0,
) -> TrainResult:
    """Fit on earlier touches (minus the 7-day conversion window), score the later ones."""
    split = time_split(data, ts_col="event_timestamp", test_fraction=0.25, gap=pd.Timedelta(days=7))
    features = feature_columns(data)
    train, test = split.train, split.test
    model = PropensityClassifier(**PARAMS, seed=seed).fit(train[features], train["label"])
    scores = model.predict_proba(test[features])
    base_scores = action_rate_scores(train, test).to_numpy()
    value, base_value = auc(test["label"], scores), auc(test["label"], base_scores)
    with training_run(settings, NAME) as run:
        return finish(
            name=NAME, run=run, predictor=model, input_example=float_example(test[features]),
            metric="auc", value=value, baseline_value=base_value, feature_names=features,
            feature_service=SERVICE, window=window_tags(*window, split.cutoff),
            params={**PARAMS, "seed": seed, "n_train": len(train), "n_test": len(test),
                    "conversion_window_days": 7, "baseline": "per-action conversion rate"},
            figure=roc_figure(test["label"].to_numpy(), {"lightgbm": scores, "action rate": base_scores},
                              "conversion within 7 days, later touches"),
            extra_metrics={"test_conversion_rate": float(test["label"].mean())},
        )
