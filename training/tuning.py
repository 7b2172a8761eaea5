"""Optuna tuning of the LightGBM classifiers: TPE sampler, median pruning on the validation AUC.

Why a few trials by default: `nba train all` must stay fast, and on tabular data most of the gain comes
from the first trials; `nba tune MODEL --trials N` runs longer studies in a shared (SQLite) storage so
several workers can add trials to one study, and resumes when the study name is reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_TRIALS", "TUNABLE", "TuneResult", "fit_best", "run_tune", "suggest_params", "tune_classifier"]

TUNABLE = ("churn", "propensity")

DEFAULT_TRIALS = 15
MAX_ROUNDS = 600
EARLY_STOPPING = 40
REPORT_EVERY = 10


@dataclass(frozen=True)
class TuneResult:
    """Best parameters (n_estimators = the best iteration) and the validation AUC that chose them."""

    params: dict
    value: float
    n_trials: int
    n_pruned: int
    study_name: str | None


def suggest_params(trial) -> dict:
    """The search space: shallow-to-medium trees, strong regularisation allowed."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.15, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 3, 48, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 400, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-2, 50.0, log=True),
    }


def _pruning_callback(trial):
    import optuna

    def callback(env) -> None:
        if (env.iteration + 1) % REPORT_EVERY:
            return
        for _, metric, value, _ in env.evaluation_result_list:
            if metric == "auc":
                trial.report(float(value), env.iteration + 1)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at round {env.iteration + 1} (valid auc {value:.4f})")
    callback.order = 30
    return callback


def tune_classifier(
    model_cls,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: list[str],
    *,
    n_trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    storage: str | None = None,
    study_name: str | None = None,
    show_progress_bar: bool = False,
    label: str = "label",
    n_jobs: int = 1,
) -> TuneResult:
    """Search LightGBM parameters on ``train``, scored by AUC on the later ``valid`` rows.

    ``storage`` (an Optuna URL such as ``sqlite:///optuna.db``) with ``study_name`` shares and resumes a
    study; ``None`` keeps it in memory. Deterministic for a given seed with in-memory storage.
    """
    import optuna

    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials!r}")
    if len(np.unique(valid[label])) < 2:
        raise ValueError("the validation rows hold one class only: cannot tune on AUC")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", storage=storage, study_name=study_name, load_if_exists=storage is not None,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, n_trials)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=60),
    )
    x_train, y_train = train[features], train[label]
    x_valid, y_valid = valid[features], valid[label]

    def objective(trial) -> float:
        params = suggest_params(trial)
        model = model_cls(**params, n_estimators=MAX_ROUNDS, n_jobs=n_jobs, seed=seed).fit(
            x_train, y_train, eval_set=(x_valid, y_valid), early_stopping_rounds=EARLY_STOPPING,
            callbacks=[_pruning_callback(trial)])
        trial.set_user_attr("n_estimators", int(model.best_iteration_))
        return float(model.booster_.best_score["valid"]["auc"])

    study.optimize(objective, n_trials=n_trials, show_progress_bar=show_progress_bar)
    best = study.best_trial
    params = {**best.params, "n_estimators": int(best.user_attrs.get("n_estimators", MAX_ROUNDS))}
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return TuneResult(params=params, value=float(best.value), n_trials=len(study.trials), n_pruned=pruned,
                      study_name=study.study_name)


def fit_best(model_cls, data: pd.DataFrame, features: list[str], params: dict, *, seed: int = 0,
             label: str = "label", n_jobs: int = 1):
    """Refit with the chosen parameters on all of ``data`` (the boosting rounds fixed by tuning).

    One thread by default: on a busy 2-core machine LightGBM's second thread spins and costs 10x.
    """
    return model_cls(**params, n_jobs=n_jobs, seed=seed).fit(data[features], data[label])


def run_tune(settings, model: str, *, trials: int, storage: str | None = None, study_name: str | None = None,
             seed: int = 0, show_progress_bar: bool = True) -> dict:
    """`nba tune`: add ``trials`` trials to the shared study of ``model`` and log the best parameters.

    The study lives in ``storage`` (default ``sqlite:///<home>/optuna.db``) under ``study_name`` (default
    ``nba-<model>``): several workers running this at once share it, and a rerun resumes it. The training
    set and inner split are the ones `nba train` uses, so the best parameters transfer.
    """
    import mlflow

    from features.identity import load_resolved_events
    from training.common import training_run

    if model not in TUNABLE:
        raise ValueError(f"model {model!r} cannot be tuned; expected one of {TUNABLE}")
    if storage is None:
        settings.home.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{settings.home / 'optuna.db'}"
    study_name = study_name or f"nba-{model}"
    events = load_resolved_events(settings.lake_dir, settings.identity_dir)
    if model == "churn":
        from models.churn import ChurnClassifier
        from training.churn import split_churn
        from training.datasets import churn_training_set, feature_columns

        data = churn_training_set(settings, events)
        _, inner_train, inner_valid = split_churn(data, seed=seed)
        model_cls = ChurnClassifier
    else:
        from training.datasets import feature_columns, propensity_training_set
        from training.propensity import propensity_model, split_propensity

        data = propensity_training_set(settings, events)
        _, inner_train, inner_valid = split_propensity(data)
        model_cls = propensity_model(settings)
    result = tune_classifier(model_cls, inner_train, inner_valid, feature_columns(data), n_trials=trials, seed=seed,
                             storage=storage, study_name=study_name, show_progress_bar=show_progress_bar)
    with training_run(settings, f"tune_{model}") as run:
        mlflow.set_tags({"kind": "tune", "study": study_name, "optuna_storage": storage})
        mlflow.log_params({f"best_{k}": v for k, v in result.params.items()})
        mlflow.log_metrics({"best_valid_auc": result.value, "n_trials": result.n_trials,
                            "n_pruned": result.n_pruned})
    return {"study": study_name, "storage": storage, "n_trials": result.n_trials, "n_pruned": result.n_pruned,
            "best_value": result.value, "best_params": result.params, "run_id": run.info.run_id}
