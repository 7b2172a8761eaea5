"""Fast scoring of many (person, action, channel) rows in one model call.

The served LightGBM predictors take a pandas frame; building one per request costs more than the
prediction. :class:`Scorer` builds the float matrix directly from the predictor's learned
``feature_names_`` and ``categories_`` (the same encoding as ``LGBMBinaryBase._encode``: category codes
by stored index, unseen -> NaN), calls the booster once and applies the predictor's own calibration and
iteration count, so a score equals ``predictor.predict_proba`` on the same rows; the predictor's derived
features (e.g. the person's open rate on the candidate's channel) are appended by its own
``append_derived``. Predictors without a booster (other model kinds, test doubles) get a frame and
``predict_proba``.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["CANDIDATE_COLUMNS", "Scorer"]

# Columns that describe the candidate rather than the person.
CANDIDATE_COLUMNS: tuple[str, ...] = ("action_id", "channel")
PARALLEL_ROWS = 20_000
SMALL_ROWS = 64
_C_API_DTYPE_FLOAT64 = 1
_C_API_PREDICT_NORMAL = 0


def _calibration(calibrator) -> Callable[[np.ndarray], np.ndarray] | None:
    """The predictor's calibration map. Platt scaling of a request's few scores runs on plain floats:
    numpy's per-call overhead (~15 us) is far more than the arithmetic. Same formula and clipping as
    :meth:`models.calibration.Calibrator.transform`, which larger inputs and other methods use."""
    if calibrator is None:
        return None
    if calibrator.method != "platt":
        return calibrator.transform
    from models.calibration import _EPS

    a, b = calibrator.params
    low, high = _EPS, 1 - _EPS

    def platt(raw: np.ndarray) -> np.ndarray:
        if len(raw) > SMALL_ROWS:
            return np.asarray(calibrator.transform(raw), dtype=np.float64)
        out = []
        for r in raw.tolist():
            r = min(max(r, low), high)
            z = min(max(a * math.log(r / (1 - r)) + b, -500.0), 500.0)
            out.append(1.0 / (1.0 + math.exp(-z)))
        return np.array(out)

    return platt


class _BoosterPredict:
    """``LGBM_BoosterPredictForMat`` on a row-major float64 matrix: what ``Booster.predict`` does for one,
    without its per-call Python work (a predictor object, parameter strings, checks), which cost as much
    as the trees themselves for request-sized inputs. Falls back to ``Booster.predict`` when this
    LightGBM build lacks the pieces."""

    def __init__(self, booster, num_iteration: int) -> None:
        self.booster = booster
        self.num_iteration = num_iteration
        try:
            from lightgbm.basic import _LIB, _c_str

            self._lib, self._handle = _LIB, booster._handle
            self._one_thread, self._default_threads = _c_str("num_threads=1"), _c_str("")
        except (ImportError, AttributeError):
            self._lib = None

    def __call__(self, matrix: np.ndarray, one_thread: bool) -> np.ndarray:
        iterations = self.num_iteration if self.num_iteration > 0 else None
        if self._lib is None:
            kwargs = {"num_threads": 1} if one_thread else {}
            return np.asarray(self.booster.predict(matrix, num_iteration=iterations, **kwargs), dtype=np.float64)
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        out = np.empty(len(matrix), dtype=np.float64)
        produced = ctypes.c_int64(0)
        code = self._lib.LGBM_BoosterPredictForMat(
            self._handle, matrix.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(_C_API_DTYPE_FLOAT64),
            ctypes.c_int32(matrix.shape[0]), ctypes.c_int32(matrix.shape[1]), ctypes.c_int(1),
            ctypes.c_int(_C_API_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(self.num_iteration or -1),
            self._one_thread if one_thread else self._default_threads, ctypes.byref(produced),
            out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        )
        if code != 0 or produced.value != len(out):
            from lightgbm.basic import LightGBMError

            raise LightGBMError(self._lib.LGBM_GetLastError().decode("utf-8"))
        return out


class Scorer:
    """Wraps one fitted binary predictor; rows are person vectors plus candidate columns."""

    def __init__(self, predictor) -> None:
        self.predictor = predictor
        self.names: list[str] = list(predictor.feature_names_)
        categories = getattr(predictor, "categories_", None) or {}
        self.codes = {n: {str(c): float(i) for i, c in enumerate(v)} for n, v in categories.items()}
        self.fast = hasattr(predictor, "booster_")
        if self.fast:
            self._booster = _BoosterPredict(predictor.booster_, int(getattr(predictor, "best_iteration_", 0) or 0))
            self._calibrate = _calibration(getattr(predictor, "calibrator_", None))
            self._derive = predictor.append_derived if getattr(predictor, "derived_", None) else None
        self.candidate_index = {n: j for j, n in enumerate(self.names) if n in CANDIDATE_COLUMNS}
        self.person_index = [(j, n) for j, n in enumerate(self.names) if n not in CANDIDATE_COLUMNS]
        numeric = [(j, n) for j, n in self.person_index if n not in self.codes]
        self._numeric_at = np.array([j for j, _ in numeric], dtype=np.intp)
        self._numeric_names = [n for _, n in numeric]
        self._categorical = [(j, n, self.codes[n]) for j, n in self.person_index if n in self.codes]

    def _encode(self, name: str, value) -> float:
        if value is None:
            return np.nan
        if name in self.codes:
            return self.codes[name].get(str(value), np.nan)
        try:
            return float(value)
        except (TypeError, ValueError):
            return np.nan

    def person_vector(self, features: Mapping[str, object] | None) -> np.ndarray:
        """One person's row, shape (n_features,), candidate columns NaN; unknown person -> all NaN."""
        row = np.full(len(self.names), np.nan)
        if not features:
            return row
        get = features.get
        try:
            # one conversion for every numeric feature (None -> NaN); a value numpy cannot read as a
            # number sends the row through the per-feature path, which maps it to NaN
            row[self._numeric_at] = np.array([get(n) for n in self._numeric_names], dtype=np.float64)
        except (TypeError, ValueError):
            for j, name in zip(self._numeric_at, self._numeric_names, strict=True):
                row[j] = self._encode(name, get(name))
        for j, name, codes in self._categorical:
            value = get(name)
            row[j] = np.nan if value is None else codes.get(str(value), np.nan)
        return row

    def person_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of many persons from a feature frame, shape (len(frame), n_features)."""
        out = np.full((len(frame), len(self.names)), np.nan)
        for j, name in self.person_index:
            if name not in frame.columns:
                continue
            column = frame[name]
            if name in self.codes:
                out[:, j] = [self._encode(name, v) for v in column.tolist()]
            else:
                out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def predict(self, rows: np.ndarray, action_ids: Sequence[str] | None = None,
                channels: Sequence[str] | None = None) -> np.ndarray:
        """Probabilities, shape (n_rows,); ``rows`` (n_rows, n_features) is not modified."""
        if len(rows) == 0:
            return np.zeros(0)
        matrix = rows.copy() if self.candidate_index else rows
        for name, values in (("action_id", action_ids), ("channel", channels)):
            j = self.candidate_index.get(name)
            if j is not None and values is not None:
                lookup = self.codes.get(name, {})
                matrix[:, j] = [lookup.get(v, np.nan) for v in values]
        if self.fast:
            if self._derive is not None:
                matrix = self._derive(matrix)
            # One thread for request-sized inputs: OpenMP start-up and spinning cost far more than the trees
            # (measured about 20 ms vs 0.13 ms for one row on a loaded 2-core machine).
            raw = self._booster(matrix, one_thread=len(matrix) < PARALLEL_ROWS)
            return raw if self._calibrate is None else self._calibrate(raw)
        frame = pd.DataFrame(matrix, columns=self.names)
        for name, values in (("action_id", action_ids), ("channel", channels)):
            if name in self.candidate_index and values is not None:
                frame[name] = list(values)
        return np.asarray(self.predictor.predict_proba(frame), dtype=np.float64)
