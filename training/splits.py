"""Time-based splits: models train on the past and are scored on the later period."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TimeSplit:
    cutoff: pd.Timestamp
    train: pd.DataFrame
    test: pd.DataFrame


def time_split(
    frame: pd.DataFrame, *, ts_col: str, test_fraction: float = 0.25, gap: pd.Timedelta = pd.Timedelta(0),
) -> TimeSplit:
    """Rows with ``ts >= cutoff`` are the test set, rows with ``ts < cutoff - gap`` the training set.

    ``cutoff`` is the (1 - test_fraction) quantile of the distinct timestamps. ``gap`` drops training rows
    whose label window would reach into the test period (e.g. the 30-day churn horizon).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if ts_col not in frame.columns:
        raise ValueError(f"frame has no column {ts_col!r}")
    ts = pd.to_datetime(frame[ts_col], utc=True)
    distinct = ts.drop_duplicates().sort_values()
    if len(distinct) < 2:
        raise ValueError(f"need at least 2 distinct {ts_col} values to split by time, got {len(distinct)}")
    position = min(max(int(round((1 - test_fraction) * len(distinct))), 1), len(distinct) - 1)
    cutoff = distinct.iloc[position]
    train = frame[(ts < cutoff - gap).to_numpy()]
    test = frame[(ts >= cutoff).to_numpy()]
    if train.empty:
        raise ValueError(f"no training rows before {cutoff - gap} (gap {gap}); need a longer data window")
    return TimeSplit(cutoff=cutoff, train=train.reset_index(drop=True), test=test.reset_index(drop=True))


def interaction_split(
    interactions: pd.DataFrame, *, test_fraction: float = 0.2,
) -> tuple[pd.DataFrame, dict[str, set[str]], pd.Timestamp]:
    """Recommender split: interactions before the cutoff train; for persons known before it, the new
    items they touch after it are what a good recommender should surface.

    Returns (train interactions, {person_id: set of held-out item ids}, cutoff).
    """
    split = time_split(interactions, ts_col="ts", test_fraction=test_fraction)
    train = split.train
    seen = train.groupby("person_id")["item_id"].agg(set)
    relevant: dict[str, set[str]] = {}
    for person, items in split.test.groupby("person_id")["item_id"]:
        if person in seen.index:
            new = set(items) - seen[person]
            if new:
                relevant[str(person)] = new
    return train, relevant, split.cutoff


def group_split(
    frame: pd.DataFrame, *, group_col: str, test_fraction: float = 0.25, seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random split by group (e.g. person): every row of a group lands on the same side.

    Used for the inner validation of churn tuning: with a 30-day label horizon an inner *time* split
    with an honest gap leaves one or two snapshot dates to train on, while a split without the gap lets
    tuning reward trees that exploit overlapping label windows (measured: valid AUC 0.75, test 0.67).
    """
    import numpy as np

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if group_col not in frame.columns:
        raise ValueError(f"frame has no column {group_col!r}")
    groups = np.sort(frame[group_col].astype(str).unique())
    rng = np.random.default_rng(seed)
    held = set(rng.choice(groups, size=max(1, int(round(test_fraction * len(groups)))), replace=False))
    mask = frame[group_col].astype(str).isin(held).to_numpy()
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def stratified_split(
    frame: pd.DataFrame, *, label_col: str, test_fraction: float = 0.25, seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random split keeping the class balance on both sides (for tables with no time column)."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    train, test = train_test_split(frame, test_size=test_fraction, random_state=seed, stratify=frame[label_col])
    return train.reset_index(drop=True), test.reset_index(drop=True)
