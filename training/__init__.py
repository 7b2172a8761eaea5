"""One entry point per model: training set, fit, baseline on the same split, MLflow logging and registry."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from config.settings import Settings
from training.bandit import train_bandit
from training.churn import train_churn
from training.common import TrainResult
from training.propensity import train_propensity
from training.recommender import train_recommender
from training.registry import configure_mlflow, list_models, load_champion

TRAINERS: dict[str, Callable[..., TrainResult]] = {
    "churn": train_churn,
    "propensity": train_propensity,
    "recommender": train_recommender,
    "bandit": train_bandit,
}


def train_all(
    settings: Settings, events: pd.DataFrame, seed: int = 0, echo: Callable[[str], None] = print,
) -> list[TrainResult]:
    """Train and register every model in turn, printing one progress line per model."""
    results = []
    for i, trainer in enumerate(TRAINERS.values(), start=1):
        started = time.perf_counter()
        result = trainer(settings, events, seed=seed)
        echo(f"[{i}/{len(TRAINERS)}] {result.name} v{result.version}: {result.metric}={result.value:.4f} "
             f"(baseline {result.baseline_value:.4f}) in {time.perf_counter() - started:.1f}s")
        results.append(result)
    return results


__all__ = [
    "TRAINERS",
    "TrainResult",
    "configure_mlflow",
    "list_models",
    "load_champion",
    "train_all",
    "train_bandit",
    "train_churn",
    "train_propensity",
    "train_recommender",
]
