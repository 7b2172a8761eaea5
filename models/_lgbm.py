"""Shared LightGBM binary learner behind the churn and propensity classifiers.

Why one base: both models take a feature frame with a few string columns (lifecycle stage, top category,
action, channel) and numbers, and both must reproduce the exact same encoding at serving time. The
category codes learned at fit are stored in the model (and in its saved files), so a category's code
never depends on the rows of a later request; unseen categories become missing values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import Calibrator, fit_calibrator

BOOSTER_FILE = "booster.txt"
META_FILE = "meta.json"
_UNSAFE = re.compile(r"[^0-9A-Za-z_]")


class NotFittedError(RuntimeError):
    """Raised when predict is called before fit."""


def check_fitted(model, attribute: str) -> None:
    if getattr(model, attribute, None) is None:
        raise NotFittedError(f"{type(model).__name__} is not fitted yet: call fit() first")


def booster_feature_names(names: Sequence[str]) -> list[str]:
    """Names LightGBM accepts (it rejects JSON special characters): ASCII word characters, made unique.

    The model keeps the caller's names in ``feature_names_`` and reads frames by them; only the booster
    sees these, so any column name (spaces, %, accents, CJK, duplicates after cleaning) works.
    """
    out: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        base = _UNSAFE.sub("_", str(name)).strip("_") or f"f{i}"
        candidate, k = base, 1
        while candidate in seen:
            k += 1
            candidate = f"{base}_{k}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _is_categorical(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


class LGBMBinaryBase:
    """Gradient-boosted binary classifier on a pandas frame (categoricals by stored codes).

    Subclasses set ``_forced_categoricals``: columns that must exist and are always categorical, and
    ``_monotone``: feature name -> +1 / -1 where the score must rise / fall with the feature whenever the
    feature is an input (what the domain says for sure; it keeps the trees from chasing label noise).
    They may also define derived features (:meth:`_derived_features`): a value picked, per row, from the
    row's own inputs by a categorical key ("the open rate of this row's channel"). The trees then learn
    one rule for all channels instead of one per channel from a fraction of the rows; the inputs (and
    so the model's signature) stay the same.
    """

    _forced_categoricals: tuple[str, ...] = ()
    _monotone: dict[str, int] = {}

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        feature_fraction: float = 0.9,
        reg_lambda: float = 1.0,
        n_jobs: int = 2,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.reg_lambda = reg_lambda
        self.n_jobs = n_jobs
        self.seed = seed

    # -- parameters -------------------------------------------------------------------------------
    def get_params(self) -> dict:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "reg_lambda": self.reg_lambda,
            "n_jobs": self.n_jobs,
            "seed": self.seed,
        }

    def _check_params(self) -> None:
        if int(self.n_estimators) < 1:
            raise ValueError(f"n_estimators must be >= 1, got {self.n_estimators!r}")
        if not 0 < float(self.learning_rate) <= 1:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate!r}")
        if int(self.num_leaves) < 2:
            raise ValueError(f"num_leaves must be >= 2, got {self.num_leaves!r}")
        if not 0 < float(self.feature_fraction) <= 1:
            raise ValueError(f"feature_fraction must be in (0, 1], got {self.feature_fraction!r}")

    def _lgb_params(self) -> dict:
        constraints = [int(self._monotone.get(name, 0)) for name in self.booster_feature_names_()]
        monotone = {"monotone_constraints": constraints} if any(constraints) else {}
        return {
            **monotone,
            "objective": "binary",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_child_samples": int(self.min_child_samples),
            "feature_fraction": float(self.feature_fraction),
            "lambda_l2": float(self.reg_lambda),
            "num_threads": int(self.n_jobs),
            "seed": int(self.seed),
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    # -- derived features -------------------------------------------------------------------------
    def _derived_features(self) -> dict[str, tuple[str, dict[str, str]]]:
        """``{name: (key column, {key value: input column})}``, decided at fit from ``feature_names_`` and
        ``categories_``; none in the base class."""
        return {}

    def booster_feature_names_(self) -> list[str]:
        """The booster's columns: the inputs, then the derived features."""
        return [*getattr(self, "feature_names_", []), *getattr(self, "derived_", {})]

    def append_derived(self, matrix: np.ndarray) -> np.ndarray:
        """Encoded inputs (n_rows, len(feature_names_)) -> the booster's matrix with the derived columns
        appended. A key that is missing, unseen at fit or without a source gives NaN. The served fast path
        (``serving.scoring``) calls this too, so both paths derive the same values."""
        groups = getattr(self, "_derived_index", ())
        if not groups:
            return matrix
        n, width = matrix.shape
        out = np.empty((n, width + len(self.derived_)))
        out[:, :width] = matrix
        out[:, width] = np.nan  # "no source" points here: every value is gathered before any is written
        starts = np.arange(n) * out.shape[1]
        flat = out.ravel()
        picked = []
        for key, missing, table in groups:
            codes = matrix[:, key]
            picked.append(flat[table[:, np.where(codes != codes, missing, codes).astype(np.intp)] + starts])
        out[:, width:] = np.concatenate(picked).T
        return out

    def _set_derived(self, derived: dict[str, tuple[str, dict[str, str]]]) -> None:
        """Keep ``derived_`` (each key's features side by side) and, per key column, what
        :meth:`append_derived` needs: the column's index, the code standing for a missing key and a
        (n_derived, n_codes + 1) table of source column indexes (``len(feature_names_)``: no source)."""
        keys = list(dict.fromkeys(key for key, _ in derived.values()))
        self.derived_ = dict(sorted(derived.items(), key=lambda item: keys.index(item[1][0])))
        index = {n: j for j, n in enumerate(self.feature_names_)}
        none = len(self.feature_names_)
        self._derived_index = []
        for key in keys:
            codes = self.categories_[key]
            rows = [[index.get(sources.get(c), none) for c in codes] + [none]
                    for k, sources in self.derived_.values() if k == key]
            self._derived_index.append((index[key], len(codes), np.array(rows, dtype=np.intp)))

    # -- encoding ---------------------------------------------------------------------------------
    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        """Frame -> float matrix in ``feature_names_`` order; categories -> stored codes, unseen -> NaN.

        Hot path of serving (a few rows per request): numbers are copied in one block, categories go
        through a dict lookup, no per-column pandas machinery.
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise ValueError(f"X is missing feature columns {missing}")
        out = np.empty((len(X), len(self.feature_names_)), dtype=np.float64)
        numeric = [j for j, n in enumerate(self.feature_names_) if n not in self.categories_]
        if numeric:
            block = X[[self.feature_names_[j] for j in numeric]]
            try:
                out[:, numeric] = block.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                out[:, numeric] = block.apply(pd.to_numeric, errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan)
        lookups = self._code_lookup()
        for j, name in enumerate(self.feature_names_):
            if name in lookups:
                index = lookups[name]
                out[:, j] = [index.get(v if isinstance(v, str) else str(v), np.nan) for v in X[name].tolist()]
        return self.append_derived(out)

    def _code_lookup(self) -> dict[str, dict[str, float]]:
        lookup = getattr(self, "_lookup", None)
        if lookup is None or lookup[0] is not self.categories_:
            tables = {n: {c: float(i) for i, c in enumerate(cats)} for n, cats in self.categories_.items()}
            lookup = self._lookup = (self.categories_, tables)
        return lookup[1]

    # -- sklearn contract -------------------------------------------------------------------------
    def fit(
        self,
        X: pd.DataFrame,
        y: Sequence[int] | np.ndarray,
        *,
        eval_set: tuple[pd.DataFrame, Sequence[int] | np.ndarray] | None = None,
        callbacks: list[Callable] | None = None,
        early_stopping_rounds: int | None = None,
    ) -> LGBMBinaryBase:
        """Learn from features ``X`` (n_rows, n_features) and binary labels ``y`` (n_rows,).

        ``eval_set`` (X_valid, y_valid) is scored by AUC each round (for tuning: LightGBM callbacks such as
        an Optuna pruner see it; with ``early_stopping_rounds`` the booster keeps its best iteration and
        ``best_iteration_`` says which). Fitting drops any earlier calibration.
        """
        self._check_params()
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(y) != len(X):
            raise ValueError(f"y has {len(y)} rows but X has {len(X)}")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("y must hold only 0/1 labels")
        if len(np.unique(y)) < 2:
            raise ValueError("y must contain both classes to fit a binary classifier")
        missing = [c for c in self._forced_categoricals if c not in X.columns]
        if missing:
            raise ValueError(f"X is missing required columns {missing}")
        self.feature_names_ = [str(c) for c in X.columns]
        self.categories_ = {}
        for name in self.feature_names_:
            if name in self._forced_categoricals or _is_categorical(X[name]):
                values = X[name].dropna().astype(str).unique()
                self.categories_[name] = sorted(values.tolist())
        derived = self._derived_features()
        clash = sorted(set(derived) & set(self.feature_names_))
        if clash:
            raise ValueError(f"columns {clash} are names of derived features of {type(self).__name__}; "
                             "rename them")
        self._set_derived(derived)
        matrix = self._encode(X)
        categorical = [j for j, n in enumerate(self.feature_names_) if n in self.categories_]
        names = booster_feature_names(self.booster_feature_names_())
        dataset = lgb.Dataset(
            matrix, label=y, feature_name=names, categorical_feature=categorical,
            free_raw_data=False, params={"verbose": -1},
        )
        params = self._lgb_params()
        valid_sets, callbacks = [], list(callbacks or [])
        if eval_set is not None:
            y_valid = np.asarray(eval_set[1], dtype=np.float64).ravel()
            valid_sets = [lgb.Dataset(self._encode(eval_set[0]), label=y_valid, reference=dataset,
                                      feature_name=names, categorical_feature=categorical)]
            params["metric"] = "auc"
            if early_stopping_rounds:
                callbacks.append(lgb.early_stopping(int(early_stopping_rounds), verbose=False))
        self.booster_ = lgb.train(params, dataset, num_boost_round=int(self.n_estimators),
                                  valid_sets=valid_sets or None, valid_names=["valid"] if valid_sets else None,
                                  callbacks=callbacks or None)
        best = getattr(self.booster_, "best_iteration", 0) or 0
        self.best_iteration_ = int(best) if best > 0 else int(self.n_estimators)
        self.n_features_in_ = len(self.feature_names_)
        self.calibrator_ = None
        return self

    def calibrate(self, X: pd.DataFrame, y: Sequence[int] | np.ndarray, method: str = "platt") -> LGBMBinaryBase:
        """Fit a monotone probability map on held-out rows (never the training rows) and apply it from now on."""
        check_fitted(self, "booster_")
        self.calibrator_ = fit_calibrator(self.predict_raw(X), np.asarray(y), method)
        return self

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """The booster's probability before calibration, shape (n_rows,)."""
        check_fitted(self, "booster_")
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.booster_.predict(self._encode(X), num_iteration=self._iterations()),
                          dtype=np.float64)

    def _iterations(self) -> int | None:
        best = getattr(self, "best_iteration_", None)
        return int(best) if best else None

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class, shape (n_rows,)."""
        raw = self.predict_raw(X)
        calibrator = getattr(self, "calibrator_", None)
        return calibrator.transform(raw) if calibrator is not None and len(raw) else raw

    def predict(self, X: pd.DataFrame, threshold: float = 0.5) -> np.ndarray:
        return (self.predict_proba(X) >= threshold).astype(np.int64)

    def feature_importance(self) -> dict[str, float]:
        """Total gain per feature: what the model leans on (for reports and explain)."""
        check_fitted(self, "booster_")
        gains = self.booster_.feature_importance(importance_type="gain")
        return {n: float(g) for n, g in zip(self.booster_feature_names_(), gains, strict=True)}

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the booster as LightGBM text plus a JSON of params, features and category codes."""
        check_fitted(self, "booster_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / BOOSTER_FILE).write_text(self.booster_.model_to_string())
        meta = {
            "class": type(self).__name__,
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "categories": self.categories_,
            "derived": {name: [key, sources] for name, (key, sources) in self.derived_.items()},
            "best_iteration": getattr(self, "best_iteration_", None),
            "calibration": None if getattr(self, "calibrator_", None) is None else self.calibrator_.to_dict(),
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> LGBMBinaryBase:
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        if meta.get("class") != cls.__name__:
            raise ValueError(f"{directory} holds a {meta.get('class')!r}, not a {cls.__name__}")
        model = cls(**meta["params"])
        model.feature_names_ = list(meta["feature_names"])
        model.categories_ = {k: list(v) for k, v in meta["categories"].items()}
        model._set_derived({name: (key, sources) for name, (key, sources) in meta.get("derived", {}).items()})
        model.booster_ = lgb.Booster(model_str=(directory / BOOSTER_FILE).read_text())
        model.n_features_in_ = len(model.feature_names_)
        model.best_iteration_ = meta.get("best_iteration")
        calibration = meta.get("calibration")
        model.calibrator_ = Calibrator.from_dict(calibration) if calibration else None
        return model
