"""Probability calibration for the LightGBM classifiers, and the numbers that say how calibrated they are.

Why: channel apps compare scores with thresholds and with money (expected value of an action), so a score
of 0.3 must mean "3 in 10". Boosted trees with regularisation are often over- or under-confident; a small
monotone map fitted on rows the trees never saw (a held-out slice) fixes that. Platt scaling (a logistic
curve on the log-odds) is strictly monotone, so it never changes AUC; isotonic regression is more flexible
but creates ties. The map is plain numbers (JSON), saved with the model and applied inside
``predict_proba``, so serving needs no extra step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CALIBRATION_METHODS", "Calibrator", "brier_score", "calibration_table", "expected_calibration_error",
           "fit_calibrator"]

CALIBRATION_METHODS = ("platt", "isotonic")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibrator:
    """A fitted monotone map from raw scores to probabilities.

    ``platt``: p = sigmoid(a * logit(raw) + b), ``params = (a, b)``.
    ``isotonic``: piecewise-linear interpolation through ``(x, y)`` knots (clipped at the ends).
    """

    method: str
    params: tuple[float, ...] = ()
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"method must be one of {CALIBRATION_METHODS}, got {self.method!r}")

    def transform(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "platt":
            a, b = self.params
            return 1.0 / (1.0 + np.exp(-np.clip(a * _logit(raw) + b, -500.0, 500.0)))
        return np.interp(raw, np.asarray(self.x), np.asarray(self.y))

    def to_dict(self) -> dict:
        return {"method": self.method, "params": list(self.params), "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        return cls(method=str(data["method"]), params=tuple(float(v) for v in data.get("params", ())),
                   x=tuple(float(v) for v in data.get("x", ())), y=tuple(float(v) for v in data.get("y", ())))


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str = "platt") -> Calibrator:
    """Fit the map on held-out raw scores ``raw`` (n,) and 0/1 labels ``y`` (n,)."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method must be one of {CALIBRATION_METHODS}, got {method!r}")
    raw = np.asarray(raw, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(raw) != len(y):
        raise ValueError(f"raw has {len(raw)} scores but y has {len(y)} labels")
    if len(np.unique(y)) < 2:
        raise ValueError("calibration needs both classes in the held-out slice")
    if method == "platt":
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(raw)[:, None], y)
        return Calibrator("platt", params=(float(lr.coef_[0, 0]), float(lr.intercept_[0])))
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    return Calibrator("isotonic", x=tuple(map(float, iso.X_thresholds_)), y=tuple(map(float, iso.y_thresholds_)))


def brier_score(y, p) -> float:
    """Mean squared error of the probabilities (lower is better; 0.25 is a coin flip at base rate 0.5)."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def calibration_table(y, p, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-count bins of the predictions: (mean predicted, observed rate, rows) per non-empty bin."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    order = np.argsort(p, kind="stable")
    groups = [g for g in np.array_split(order, min(bins, len(p))) if len(g)]
    mean_p = np.array([p[g].mean() for g in groups])
    rate = np.array([y[g].mean() for g in groups])
    return mean_p, rate, np.array([len(g) for g in groups], dtype=np.int64)


def expected_calibration_error(y, p, bins: int = 10) -> float:
    """Row-weighted mean |observed rate - mean prediction| over equal-count bins."""
    mean_p, rate, counts = calibration_table(y, p, bins)
    if counts.sum() == 0:
        return float("nan")
    return float(np.sum(counts * np.abs(rate - mean_p)) / counts.sum())
