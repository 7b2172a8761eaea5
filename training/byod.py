"""Bring your own data: train churn/propensity-style classifiers on any customer table (CSV or parquet).

A data scientist points `nba train churn --data FILE --target COLUMN` at a table; this module reads it,
infers the feature columns (numbers stay numbers, everything else is categorical with stored codes),
keeps missing values as missing (LightGBM routes them), accepts any column name (the booster sees
sanitised names, the model keeps the caller's; see models._lgbm.booster_feature_names), splits held-out
rows (stratified at random, or by a given time column), tunes, calibrates, scores against a logistic
baseline and logs/registers the model.

Registered under ``<model>_byod`` (or ``register_as``), never under ``churn``/``propensity``: a model
trained on an outside table has other features than the served feature service, so it must never
replace the served champion by accident. Bad input raises :class:`DataError` whose message names the
file, column or value at fault (the CLI maps it to exit code 2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from config.settings import Settings

__all__ = ["ByodResult", "DataError", "prepare_table", "read_table", "train_byod"]

KINDS = ("churn", "propensity")
TEST_FRACTION = 0.25
VALID_FRACTION = 0.25
MIN_ROWS_PER_CLASS = 8
ID_LIKE_SHARE = 0.5  # a text column with more distinct values than this share of rows is an identifier


class DataError(ValueError):
    """The table cannot be used as given; the message says which file, column or value and why."""


@dataclass(frozen=True)
class ByodResult:
    name: str
    version: str
    run_id: str
    auc: float
    baseline_auc: float
    target: str
    positive: str
    n_rows: int
    n_train: int
    n_test: int
    positive_rate: float
    features: list[str]
    dropped_columns: dict[str, str]
    split: str

    def to_dict(self) -> dict:
        return asdict(self)


def read_table(path: str | Path) -> pd.DataFrame:
    """CSV (``.csv``, ``.txt``, ``.tsv``; delimiter sniffed) or parquet, by suffix; DataError on failure."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"--data {path}: no such file")
    if path.is_dir():
        raise DataError(f"--data {path}: is a directory, expected a CSV or parquet file")
    if path.stat().st_size == 0:
        raise DataError(f"--data {path}: the file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".tsv", ""):
            frame = pd.read_csv(path, sep=None, engine="python", encoding="utf-8-sig")
        else:
            raise DataError(f"--data {path}: unsupported file type {suffix!r} (use .csv or .parquet)")
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"--data {path}: the file has no columns (empty)") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file, reported as such
        raise DataError(f"--data {path}: cannot read it as {suffix or 'csv'}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if frame.empty:
        raise DataError(f"--data {path}: the table has no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _binary_target(values: pd.Series, target: str, positive: str | None) -> tuple[np.ndarray, str]:
    present = values.dropna()
    distinct = pd.unique(present)
    as_text = present.astype(str)
    if positive is not None:
        if positive not in set(as_text) and pd.api.types.is_numeric_dtype(values):
            try:
                number = float(positive)
            except ValueError:
                number = None
            if number is not None and (values == number).any():
                return (values == number).to_numpy(dtype=np.int64), positive
        if positive not in set(as_text):
            shown = sorted(set(as_text))[:10]
            raise DataError(f"--positive {positive!r} does not occur in target column {target!r} "
                            f"(values: {shown})")
        return (as_text == positive).to_numpy(dtype=np.int64), positive
    if len(distinct) > 2:
        raise DataError(f"target column {target!r} has {len(distinct)} distinct values; say which one is the "
                        "positive class with --positive VALUE")
    # two values: the larger one is positive (1 over 0, True over False, "yes" over "no")
    try:
        chosen = sorted(distinct)[-1]
    except TypeError:
        chosen = sorted(distinct, key=str)[-1]
    return (present == chosen).to_numpy(dtype=np.int64), str(chosen)


def prepare_table(
    frame: pd.DataFrame, target: str, *, positive: str | None = None, time_column: str | None = None,
) -> tuple[pd.DataFrame, list[str], str, dict[str, str]]:
    """(frame with a 0/1 ``label`` column, feature columns, positive value, {dropped column: reason}).

    Rows with a missing target are dropped. Text columns that look numeric become numbers; text
    columns with mostly distinct values (identifiers) and date columns other than ``time_column`` are
    left out, with the reason reported.
    """
    if target not in frame.columns:
        raise DataError(f"--target {target!r}: no such column; columns are {list(frame.columns)[:30]}")
    if time_column is not None and time_column not in frame.columns:
        raise DataError(f"--time-column {time_column!r}: no such column")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    if frame.empty:
        raise DataError(f"target column {target!r} is empty (all values missing)")
    if frame[target].astype(str).nunique() < 2:
        raise DataError(f"target column {target!r} is constant ({frame[target].iloc[0]!r} in every row): "
                        "nothing to learn")
    y, chosen = _binary_target(frame[target], target, positive)
    if y.min() == y.max():
        raise DataError(f"target column {target!r}: every row is {'positive' if y[0] else 'negative'} for "
                        f"--positive {chosen!r}: nothing to learn")
    counts = np.bincount(y, minlength=2)
    if counts.min() < MIN_ROWS_PER_CLASS:
        raise DataError(f"target column {target!r}: only {counts.min()} rows in the smaller class; need at "
                        f"least {MIN_ROWS_PER_CLASS} to split, tune and evaluate")
    out = pd.DataFrame(index=frame.index)
    dropped: dict[str, str] = {}
    features: list[str] = []
    for column in frame.columns:
        if column in (target, time_column):
            continue
        series = frame[column]
        if series.isna().all():
            dropped[column] = "all values missing"
            continue
        if pd.api.types.is_datetime64_any_dtype(series):
            dropped[column] = "date/time column (pass it as --time-column to split by it)"
            continue
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            numbers = pd.to_numeric(series, errors="coerce")
            if numbers.notna().sum() == series.notna().sum():
                series = numbers
            elif series.astype(str).nunique() > max(20, ID_LIKE_SHARE * len(series)):
                dropped[column] = "identifier-like text (mostly distinct values)"
                continue
            else:
                series = series.where(series.isna(), series.astype(str))
        if pd.api.types.is_bool_dtype(series):
            series = series.astype(float)
        if series.nunique(dropna=True) < 2 and not series.isna().any():
            dropped[column] = "constant"
            continue
        out[column] = series
        features.append(column)
    if not features:
        raise DataError(f"no usable feature columns besides target {target!r} (dropped: {dropped})")
    out["label"] = y
    if time_column is not None:
        out["__time__"] = pd.to_datetime(frame[time_column], utc=True, errors="coerce")
        if out["__time__"].isna().all():
            raise DataError(f"--time-column {time_column!r}: no value parses as a date/time")
    return out, features, chosen, dropped


def _split(data: pd.DataFrame, time_column: str | None, seed: int):
    from training.splits import stratified_split, time_split

    if time_column is None:
        train, test = stratified_split(data, label_col="label", test_fraction=TEST_FRACTION, seed=seed)
        inner_train, inner_valid = stratified_split(train, label_col="label", test_fraction=VALID_FRACTION,
                                                    seed=seed)
        return train, test, inner_train, inner_valid, "stratified random"
    data = data[data["__time__"].notna()]
    outer = time_split(data, ts_col="__time__", test_fraction=TEST_FRACTION)
    inner = time_split(outer.train, ts_col="__time__", test_fraction=VALID_FRACTION)
    for part, rows in (("test", outer.test), ("training", inner.train), ("validation", inner.test)):
        if rows["label"].nunique() < 2:
            raise DataError(f"--time-column {time_column!r}: the {part} period holds one class only")
    return outer.train, outer.test, inner.train, inner.test, f"time ({time_column})"


def logistic_baseline(train: pd.DataFrame, test: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Logistic regression on imputed, scaled numbers and one-hot categories."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
    categorical = [c for c in features if c not in numeric]
    steps = []
    if numeric:
        steps.append(("num", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                           StandardScaler()), numeric))
    if categorical:
        steps.append(("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="<missing>"),
                                           OneHotEncoder(handle_unknown="ignore", min_frequency=5)), categorical))
    model = make_pipeline(ColumnTransformer(steps), LogisticRegression(max_iter=2000))
    model.fit(train[features].astype({c: object for c in categorical}), train["label"])
    return model.predict_proba(test[features].astype({c: object for c in categorical}))[:, 1]


def train_byod(
    settings: Settings, path: str | Path, *, kind: str, target: str, positive: str | None = None,
    time_column: str | None = None, register_as: str | None = None, n_trials: int | None = None, seed: int = 0,
) -> ByodResult:
    """Read, prepare, split, tune, calibrate, evaluate against the baseline, log and register."""
    from models.churn import ChurnClassifier
    from models.propensity import PropensityClassifier
    from training.common import auc, finish, float_example, training_run
    from training.plots import roc_figure
    from training.tabular import classification_metrics, fit_tuned_calibrated, log_evaluation, tuning_params
    from training.tuning import DEFAULT_TRIALS

    if kind not in KINDS:
        raise DataError(f"model {kind!r} cannot be trained on an outside table; expected one of {KINDS}")
    name = register_as or f"{kind}_byod"
    if name in KINDS:
        raise DataError(f"--register-as {name!r} would replace the served {name} model; choose another name")
    raw = read_table(path)
    data, features, chosen, dropped = prepare_table(raw, target, positive=positive, time_column=time_column)
    # propensity tables that carry action_id and channel keep them as forced categoricals
    model_cls = (PropensityClassifier if kind == "propensity" and {"action_id", "channel"} <= set(features)
                 else ChurnClassifier)
    train, test, inner_train, inner_valid, split = _split(data, time_column, seed)
    trials = DEFAULT_TRIALS if n_trials is None else n_trials
    model, tuned = fit_tuned_calibrated(model_cls, train, inner_train, inner_valid, features, n_trials=trials,
                                        seed=seed, calibration="platt")
    scores = model.predict_proba(test[features])
    base_scores = logistic_baseline(train, test, features)
    value, base_value = auc(test["label"], scores), auc(test["label"], base_scores)
    metrics = classification_metrics(test["label"], scores, base_scores)
    y = test["label"].to_numpy()
    curves = {"lightgbm (calibrated)": scores, "logistic": base_scores}
    title = f"{Path(path).name}: {target} = {chosen}"
    window = {"data_file": str(Path(path).resolve()), "target": target, "positive": chosen, "split": split}
    with training_run(settings, name) as run:
        log_evaluation(prefix=name, title=title, y=y, curves=curves, importance=model.feature_importance(),
                       heldout=pd.DataFrame({"label": y, "score": scores, "baseline_score": base_scores}))
        import mlflow

        mlflow.log_dict({"dropped_columns": dropped, "features": features}, "byod_columns.json")
        result = finish(
            name=name, run=run, predictor=model, input_example=float_example(test[features]), metric="auc",
            value=value, baseline_value=base_value, feature_names=features, feature_service=f"byod:{Path(path).name}",
            window=window, params={**tuned.params, **tuning_params(tuned, "platt"), "seed": seed,
                                   "n_train": len(train), "n_test": len(test), "baseline": "logistic regression"},
            figure=roc_figure(y, curves, title),
            extra_metrics={k: v for k, v in metrics.items() if k not in ("auc", "baseline_auc")},
        )
    return ByodResult(name=name, version=result.version, run_id=result.run_id, auc=value, baseline_auc=base_value,
                      target=target, positive=chosen, n_rows=len(data), n_train=len(train), n_test=len(test),
                      positive_rate=float(data["label"].mean()), features=features, dropped_columns=dropped,
                      split=split)
