"""What every trainer shares: the result contract, metrics, plots and the MLflow run wrapper."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from config.settings import Settings
from training.registry import configure_mlflow, log_registered_model


@dataclass(frozen=True)
class TrainResult:
    """One trained and registered model: its version, headline metric and the baseline's value."""

    name: str
    version: str
    run_id: str
    metric: str
    value: float
    baseline_value: float

    @property
    def beats_baseline(self) -> bool:
        return self.value > self.baseline_value


def auc(y_true, scores) -> float:
    """ROC AUC; 0.5 when the test set holds one class only (no ranking is possible)."""
    y_true = np.asarray(y_true)
    if len(np.unique(y_true)) < 2:
        return 0.5
    return float(roc_auc_score(y_true, scores))


def float_example(frame: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """Input example with every numeric column as float64, so the logged signature says ``double``.

    MLflow refuses int64 -> double at predict time but features arrive as either (NaN makes ints float),
    so the contract is "numbers as doubles"; the models cast to float internally anyway.
    """
    example = frame.head(n).copy()
    for column in example.columns:
        if pd.api.types.is_numeric_dtype(example[column]) or pd.api.types.is_bool_dtype(example[column]):
            example[column] = example[column].astype(np.float64)
    return example


def new_figure(size: tuple[float, float]) -> Figure:
    """A pyplot-free figure (Agg canvas on save): no global backend state, safe in servers and threads."""
    return Figure(figsize=size)


def window_tags(start: pd.Timestamp, end: pd.Timestamp, cutoff: pd.Timestamp | None = None) -> dict[str, str]:
    tags = {"data_start": start.isoformat(), "data_end": end.isoformat()}
    if cutoff is not None:
        tags["split_cutoff"] = pd.Timestamp(cutoff).isoformat()
    return tags


@contextmanager
def training_run(settings: Settings, name: str):
    """An MLflow run in the ``nba`` experiment, tagged with the model name."""
    configure_mlflow(settings)
    with mlflow.start_run(run_name=name, tags={"model": name}) as run:
        yield run


def finish(
    *,
    name: str,
    run,
    predictor,
    input_example: pd.DataFrame,
    metric: str,
    value: float,
    baseline_value: float,
    feature_names: list[str],
    feature_service: str,
    window: dict[str, str],
    params: dict,
    figure,
    extra_metrics: dict[str, float] | None = None,
) -> TrainResult:
    """Log params, metrics, window, features and plot to the active run; register with tags; champion."""
    mlflow.log_params({k: v for k, v in params.items() if v is not None})
    mlflow.log_params(window)
    mlflow.log_param("n_features", len(feature_names))
    mlflow.log_dict({"feature_names": feature_names}, "feature_names.json")
    mlflow.log_metrics({metric: value, f"baseline_{metric}": baseline_value, **(extra_metrics or {})})
    mlflow.log_figure(figure, f"{name}_{metric}.png")
    mlflow.set_tags({"feature_service": feature_service, **window})
    tags = {
        "metric": metric, "value": f"{value:.6f}", "baseline_value": f"{baseline_value:.6f}",
        "feature_service": feature_service, "feature_names": json.dumps(feature_names), **window,
    }
    version = log_registered_model(predictor, name, input_example, tags)
    return TrainResult(name=name, version=version, run_id=run.info.run_id, metric=metric,
                       value=float(value), baseline_value=float(baseline_value))


Echo = Callable[[str], None]
