"""MLflow pyfunc wrappers: one ``PythonModel`` per model class.

The wrapper object that MLflow pickles holds no learned state; the fitted model is saved with its own
``save`` (LightGBM text, numpy arrays, JSON) as the ``model`` artifact and rebuilt in ``load_context``.
``predict`` is the standard pyfunc contract; ``.predictor`` is the fitted model for the serving fast path
(``loaded.unwrap_python_model().predictor``), skipping pyfunc's input conversion.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature

from models.budget_bandit import ThompsonBudgetAllocator
from models.churn import ChurnClassifier
from models.propensity import PropensityClassifier
from models.recommender import MatrixFactorizationRecommender

MODEL_ARTIFACT = "model"


class _PredictorModel(mlflow.pyfunc.PythonModel):
    """Loads ``predictor`` from the ``model`` artifact folder with the model class's ``load``."""

    model_class: type = object
    accepts_any_input = False

    def __init__(self, predictor=None) -> None:
        self.predictor = predictor

    def __getstate__(self) -> dict:
        # never pickle the fitted model: it travels as artifacts in its own formats
        return {"predictor": None}

    def load_context(self, context) -> None:
        self.predictor = self.model_class.load(context.artifacts[MODEL_ARTIFACT])


class ChurnPyfunc(_PredictorModel):
    """Input: feature frame (columns ``feature_names_``); output: churn probability per row."""

    model_class = ChurnClassifier

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.predictor.predict_proba(pd.DataFrame(model_input))


class PropensityPyfunc(_PredictorModel):
    """Input: frame with ``action_id, channel`` and person features; output: conversion probability."""

    model_class = PropensityClassifier

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.predictor.predict_proba(pd.DataFrame(model_input))


class RecommenderPyfunc(_PredictorModel):
    """Input: ``person_id`` (optional ``k``, default 10); output: long frame person_id, rank, item_id, score."""

    model_class = MatrixFactorizationRecommender
    default_k = 10

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        if "person_id" not in frame.columns:
            raise ValueError("model_input must have a person_id column")
        ks = frame["k"] if "k" in frame.columns else pd.Series(self.default_k, index=frame.index)
        rows = []
        for person, k in zip(frame["person_id"].astype(str), ks, strict=True):
            k = self.default_k if pd.isna(k) else int(k)
            for rank, (item, score) in enumerate(self.predictor.recommend(person, k), start=1):
                rows.append((person, rank, item, score))
        out = pd.DataFrame(rows, columns=["person_id", "rank", "item_id", "score"])
        return out.astype({"person_id": str, "rank": np.int64, "item_id": str, "score": np.float64})


class BudgetBanditPyfunc(_PredictorModel):
    """Input: any frame (ignored); output: frame channel, share (deterministic: fixed seed and draws)."""

    model_class = ThompsonBudgetAllocator
    accepts_any_input = True
    n_samples = 20_000
    seed = 0

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        shares = self.predictor.budget_shares(self.n_samples, self.seed)
        return pd.DataFrame({"channel": list(shares), "share": list(shares.values())})


_WRAPPERS: dict[type, type[_PredictorModel]] = {
    ChurnClassifier: ChurnPyfunc,
    PropensityClassifier: PropensityPyfunc,
    MatrixFactorizationRecommender: RecommenderPyfunc,
    ThompsonBudgetAllocator: BudgetBanditPyfunc,
}


def pyfunc_for(predictor, workdir: str | Path | None = None) -> tuple[_PredictorModel, dict[str, str]]:
    """The pyfunc wrapper for a fitted model plus its ``artifacts`` mapping (saved under ``workdir``).

    Pass both to ``mlflow.pyfunc.log_model(python_model=..., artifacts=...)``. The wrapper also carries
    the in-process predictor, so it can predict before being logged.
    """
    wrapper_class = _WRAPPERS.get(type(predictor))
    if wrapper_class is None:
        raise TypeError(f"no pyfunc wrapper for {type(predictor).__name__}")
    workdir = Path(workdir or tempfile.mkdtemp(prefix="nba-model-"))
    path = predictor.save(workdir / MODEL_ARTIFACT)
    return wrapper_class(predictor), {MODEL_ARTIFACT: str(path)}


def signature_for(wrapper: _PredictorModel, input_example: pd.DataFrame) -> ModelSignature:
    """Signature inferred from the example and the wrapper's own output; input-free models (the
    bandit) get an output-only signature so any frame is accepted."""
    output = wrapper.predict(None, input_example)
    return infer_signature(None if wrapper.accepts_any_input else input_example, output)
