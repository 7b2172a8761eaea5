"""The shared flow of the tabular classifiers (churn, propensity, bring-your-own-data).

tune on an inner split -> calibrate on the inner validation rows (never seen by the calibrated trees'
training) -> refit on the whole training period with the chosen parameters, keeping the calibration ->
score held-out rows against a baseline -> log metrics, plots and the held-out rows to the active MLflow
run. The held-out rows are what evaluation joins with ground truth later (training never reads truth).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from models.calibration import brier_score, expected_calibration_error
from training.common import TrainResult, auc, finish, float_example, training_run, window_tags
from training.plots import classifier_figures, roc_figure
from training.tuning import DEFAULT_TRIALS, TuneResult, fit_best, tune_classifier

__all__ = ["HELDOUT_ARTIFACT", "classification_metrics", "fit_tuned_calibrated", "log_evaluation",
           "log_classifier_run", "tuning_params"]

HELDOUT_ARTIFACT = "heldout.parquet"


def fit_tuned_calibrated(
    model_cls,
    train: pd.DataFrame,
    inner_train: pd.DataFrame,
    inner_valid: pd.DataFrame,
    features: list[str],
    *,
    n_trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    calibration: str = "platt",
    storage: str | None = None,
    study_name: str | None = None,
    show_progress_bar: bool = False,
):
    """Return (fitted calibrated model, TuneResult). ``inner_train``/``inner_valid`` partition ``train``."""
    tuned = tune_classifier(model_cls, inner_train, inner_valid, features, n_trials=n_trials, seed=seed,
                            storage=storage, study_name=study_name, show_progress_bar=show_progress_bar)
    inner = fit_best(model_cls, inner_train, features, tuned.params, seed=seed)
    inner.calibrate(inner_valid[features], inner_valid["label"], calibration)
    model = fit_best(model_cls, train, features, tuned.params, seed=seed)
    model.calibrator_ = inner.calibrator_
    return model, tuned


def tuning_params(tuned: TuneResult, calibration: str) -> dict:
    """What a run logs about its tuning (the chosen parameters are logged with the model's own)."""
    return {"tuning_trials": tuned.n_trials, "tuning_pruned": tuned.n_pruned, "tuning_valid_auc": round(tuned.value, 6),
            "calibration": calibration}


def classification_metrics(y, score, baseline) -> dict[str, float]:
    """AUC, average precision, Brier score and expected calibration error of model and baseline."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y)
    out: dict[str, float] = {}
    for prefix, s in (("", score), ("baseline_", baseline)):
        s = np.asarray(s, dtype=float)
        if len(np.unique(y)) > 1:
            out[f"{prefix}auc"] = float(roc_auc_score(y, s))
            out[f"{prefix}average_precision"] = float(average_precision_score(y, s))
        out[f"{prefix}brier"] = brier_score(y, s)
        out[f"{prefix}ece"] = expected_calibration_error(y, s)
    return out


def log_evaluation(
    *, prefix: str, title: str, y, curves: dict[str, np.ndarray], importance: dict[str, float],
    heldout: pd.DataFrame | None = None,
) -> None:
    """Log the plots (ROC, PR, calibration, lift/gain, importance) and the held-out rows to the active run."""
    for path, figure in classifier_figures(np.asarray(y), curves, importance, title, prefix).items():
        with warnings.catch_warnings():  # CJK/emoji column names: a missing glyph is cosmetic
            warnings.filterwarnings("ignore", message="Glyph .* missing")
            mlflow.log_figure(figure, path)
    mlflow.log_dict({k: float(v) for k, v in sorted(importance.items(), key=lambda kv: -kv[1])},
                    f"{prefix}_importance.json")
    if heldout is not None:
        with tempfile.TemporaryDirectory(prefix="nba-heldout-") as tmp:
            path = Path(tmp) / HELDOUT_ARTIFACT
            heldout.to_parquet(path, index=False)
            mlflow.log_artifact(str(path))


def log_classifier_run(
    settings, *, name: str, service: str, model, tuned: TuneResult, calibration: str, test: pd.DataFrame,
    features: list[str], scores, baseline_scores, baseline: str, heldout: pd.DataFrame, window, cutoff,
    title: str, params: dict, extra_metrics: dict,
) -> TrainResult:
    """Score model and baseline on the held-out rows, log plots, metrics and rows, then register the model."""
    y = test["label"].to_numpy()
    metrics = classification_metrics(y, scores, baseline_scores)
    curves = {"lightgbm (calibrated)": scores, baseline: baseline_scores}
    with training_run(settings, name) as run:
        log_evaluation(prefix=name, title=title, y=y, curves=curves, importance=model.feature_importance(),
                       heldout=heldout)
        return finish(
            name=name, run=run, predictor=model, input_example=float_example(test[features]),
            metric="auc", value=auc(y, scores), baseline_value=auc(y, baseline_scores), feature_names=features,
            feature_service=service, window=window_tags(*window, cutoff),
            params={**tuned.params, **tuning_params(tuned, calibration), "n_test": len(test),
                    "baseline": baseline, **params},
            figure=roc_figure(y, curves, title),
            extra_metrics={**{k: v for k, v in metrics.items() if k not in ("auc", "baseline_auc")},
                           **extra_metrics},
        )
