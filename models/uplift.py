"""Uplift: how much a touch changes a person's chance to buy (treated minus untreated response).

Why: a high propensity score also goes to customers who would buy anyway; arbitration should prefer the
persuadable ones, whose response moves with a touch. The brand's logging policy touches at random, so
persons touched in a week and persons not touched that week are comparable groups; a T-learner fits one
LightGBM response model per group and scores uplift = P(buy | touched) - P(buy | not touched).
Qini and AUUC say how much better than random targeting the uplift ranking is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from models._lgbm import LGBMBinaryBase, check_fitted

__all__ = ["ResponseClassifier", "TLearnerUplift", "qini_curve", "uplift_metrics"]

UPLIFT_META = "uplift.json"


class ResponseClassifier(LGBMBinaryBase):
    """LightGBM P(outcome) of one group (treated or control) of the T-learner."""


class TLearnerUplift:
    """Two response models on person features; ``predict_uplift`` is their difference.

    Attributes: ``treated_``, ``control_`` (ResponseClassifier), ``feature_names_`` (shared inputs).
    """

    def __init__(self, *, n_estimators: int = 150, learning_rate: float = 0.05, num_leaves: int = 8,
                 min_child_samples: int = 50, n_jobs: int = 1, seed: int = 0) -> None:
        self.params = {"n_estimators": n_estimators, "learning_rate": learning_rate, "num_leaves": num_leaves,
                       "min_child_samples": min_child_samples, "n_jobs": n_jobs, "seed": seed}

    def fit(self, X: pd.DataFrame, treated: Sequence[int] | np.ndarray, y: Sequence[int] | np.ndarray):
        """``X`` person features (n, f); ``treated`` 0/1 (n,); ``y`` 0/1 outcome (n,)."""
        treated = np.asarray(treated).astype(bool).ravel()
        y = np.asarray(y).ravel()
        if len(treated) != len(X) or len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows, treated {len(treated)}, y {len(y)}")
        if treated.all() or not treated.any():
            raise ValueError("uplift needs both treated and untreated rows")
        self.treated_ = ResponseClassifier(**self.params).fit(X[treated], y[treated])
        self.control_ = ResponseClassifier(**self.params).fit(X[~treated], y[~treated])
        self.feature_names_ = list(self.treated_.feature_names_)
        return self

    def predict_treated(self, X: pd.DataFrame) -> np.ndarray:
        check_fitted(self, "treated_")
        return self.treated_.predict_proba(X)

    def predict_control(self, X: pd.DataFrame) -> np.ndarray:
        check_fitted(self, "control_")
        return self.control_.predict_proba(X)

    def predict_uplift(self, X: pd.DataFrame) -> np.ndarray:
        """P(outcome | touched) - P(outcome | not touched), shape (n_rows,)."""
        return self.predict_treated(X) - self.predict_control(X)

    def save(self, directory: str | Path) -> Path:
        check_fitted(self, "treated_")
        directory = Path(directory)
        self.treated_.save(directory / "treated")
        self.control_.save(directory / "control")
        (directory / UPLIFT_META).write_text(json.dumps({"params": self.params}))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TLearnerUplift:
        directory = Path(directory)
        meta = json.loads((directory / UPLIFT_META).read_text())
        model = cls(**meta["params"])
        model.treated_ = ResponseClassifier.load(directory / "treated")
        model.control_ = ResponseClassifier.load(directory / "control")
        model.feature_names_ = list(model.treated_.feature_names_)
        return model


def qini_curve(y, treated, score) -> tuple[np.ndarray, np.ndarray]:
    """(share targeted, Qini) when targeting by descending ``score``.

    Qini(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k): extra outcomes among the top k over what the untreated
    rate of the same top k predicts (0 while no untreated row has been reached).
    """
    y = np.asarray(y, dtype=float)
    t = np.asarray(treated).astype(bool)
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    y, t = y[order], t[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * ~t)
    qini = y_t - np.divide(y_c * n_t, n_c, out=np.zeros_like(y_c), where=n_c > 0)
    return np.arange(1, len(y) + 1) / max(len(y), 1), qini


def uplift_metrics(y, treated, score) -> dict[str, float]:
    """Qini coefficient and AUUC of ``score`` vs random targeting, per treated row (higher is better).

    ``auuc`` = mean Qini over all cut-offs / number treated; ``auuc_random`` the same for the straight line
    of random targeting; ``qini_coefficient`` = their difference; ``uplift_top30`` the observed treated
    minus untreated rate in the top 30% vs ``uplift_all`` over everyone.
    """
    y = np.asarray(y, dtype=float)
    t = np.asarray(treated).astype(bool)
    if len(y) == 0 or t.all() or not t.any():
        return {}
    share, qini = qini_curve(y, t, score)
    random = qini[-1] * share
    n_t = float(t.sum())
    auuc, auuc_random = float(qini.mean() / n_t), float(random.mean() / n_t)
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[: max(1, int(0.3 * len(y)))]

    def observed(idx) -> float:
        tt = t[idx]
        if tt.all() or not tt.any():
            return float("nan")
        return float(y[idx][tt].mean() - y[idx][~tt].mean())

    return {"auuc": auuc, "auuc_random": auuc_random, "qini_coefficient": auuc - auuc_random,
            "uplift_top30": observed(top), "uplift_all": observed(np.arange(len(y)))}
