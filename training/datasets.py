"""Training sets from the lake (labels) and Feast (point-in-time features).

Label logic is pure (frames in, frames out); the Feast join is the thin edge :func:`_join_features`.
``events`` is the resolved lake (features.schema.LAKE_COLUMNS + person_id, ts UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from config.settings import Settings

CHURN_HORIZON = pd.Timedelta(days=30)
CONVERSION_WINDOW = pd.Timedelta(days=7)
INTERACTION_TYPES = ("product_view", "add_to_cart", "order")
KEYS = ("person_id", "event_timestamp")


@dataclass(frozen=True)
class ActionEconomics:
    """What a conversion of an action is worth and what one touch costs (currency units)."""

    value: float
    cost: float


def _catalog_actions(path: str | Path) -> list[dict]:
    """The raw action entries of the action catalog YAML (config/actions.yaml)."""
    return (yaml.safe_load(Path(path).read_text()) or {}).get("actions") or []


def load_action_economics(path: str | Path) -> dict[str, ActionEconomics]:
    """``{action_id: ActionEconomics}`` from the action catalog."""
    return {str(a["id"]): ActionEconomics(float(a.get("value", 0.0)), float(a.get("cost", 0.0)))
            for a in _catalog_actions(path)}


def load_action_categories(path: str | Path) -> dict[str, str]:
    """``{action_id: product category}`` of the catalog's actions that promote a category."""
    return {str(a["id"]): str(a["category"]) for a in _catalog_actions(path) if a.get("category")}


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True).astype("datetime64[ns, UTC]")


def _resolved(events: pd.DataFrame, event_types: tuple[str, ...]) -> pd.DataFrame:
    frame = events[events["event_type"].isin(event_types) & events["person_id"].notna()].copy()
    frame["ts"] = _utc(frame["ts"])
    return frame


def data_window(events: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    ts = _utc(events["ts"])
    return ts.min(), ts.max()


# -- churn --------------------------------------------------------------------------------------------
def churn_labels(events: pd.DataFrame, dates, horizon: pd.Timedelta = CHURN_HORIZON) -> pd.DataFrame:
    """Rows (person_id, event_timestamp=T, label) for persons with >= 1 order at or before T.

    ``label`` = 1 when the person places no order in (T, T + horizon]. Dates with T + horizon beyond the
    last event are skipped (their label is not yet known).
    """
    orders = _resolved(events, ("order",))[["person_id", "ts"]]
    _, end = data_window(events)
    first = orders.groupby("person_id")["ts"].min()
    frames = []
    for when in pd.to_datetime(pd.Index(dates), utc=True):
        if when + horizon > end:
            continue
        active = first.index[first <= when]
        window = orders[(orders["ts"] > when) & (orders["ts"] <= when + horizon)]
        buyers = set(window["person_id"])
        frames.append(pd.DataFrame({
            "person_id": active.astype(str),
            "event_timestamp": when,
            "label": [0 if p in buyers else 1 for p in active],
        }))
    if not frames:
        return pd.DataFrame({"person_id": pd.Series(dtype=str), "event_timestamp": pd.Series(
            dtype="datetime64[ns, UTC]"), "label": pd.Series(dtype=int)})
    out = pd.concat(frames, ignore_index=True)
    out["event_timestamp"] = _utc(out["event_timestamp"])
    return out


def churn_training_set(settings: Settings, events: pd.DataFrame) -> pd.DataFrame:
    """Weekly snapshots with churn labels joined to ``churn_v1`` features as of each snapshot."""
    from features.engineering import snapshot_dates

    start, end = data_window(events)
    labels = churn_labels(events, snapshot_dates(start, end - CHURN_HORIZON, every_days=7))
    return _join_features(settings, labels, "churn_v1")


# -- propensity ---------------------------------------------------------------------------------------
def touch_outcomes(events: pd.DataFrame, window: pd.Timedelta = CONVERSION_WINDOW) -> pd.DataFrame:
    """One row per ``touch``: person_id, event_timestamp, touch_id, action_id, channel, label.

    ``label`` = 1 when a ``conversion`` with the same touch_id follows within ``window``.
    """
    touches = _resolved(events, ("touch",))
    touches = touches[touches["touch_id"].notna()].drop_duplicates("touch_id")
    conversions = _resolved(events, ("conversion",))
    first_conv = conversions.groupby("touch_id")["ts"].min().rename("conv_ts")
    merged = touches.join(first_conv, on="touch_id")
    delay = merged["conv_ts"] - merged["ts"]
    label = (delay.notna() & (delay >= pd.Timedelta(0)) & (delay <= window)).astype(int)
    return pd.DataFrame({
        "person_id": merged["person_id"].astype(str).to_numpy(),
        "event_timestamp": merged["ts"].to_numpy(),
        "touch_id": merged["touch_id"].astype(str).to_numpy(),
        "action_id": merged["action_id"].astype(str).to_numpy(),
        "channel": merged["channel"].astype(str).to_numpy(),
        "label": label.to_numpy(),
    }).sort_values("event_timestamp", kind="stable").reset_index(drop=True)


def propensity_training_set(settings: Settings, events: pd.DataFrame) -> pd.DataFrame:
    """Touch outcomes joined to ``propensity_v1`` features as of the moment of each touch."""
    return _join_features(settings, touch_outcomes(events), "propensity_v1")


def uplift_units(
    events: pd.DataFrame, dates, window: pd.Timedelta = CONVERSION_WINDOW, *, control_per_treated: float = 2.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Rows (person_id, event_timestamp=T, treated, label) for the uplift T-learner.

    For each date T, persons seen before T are units; ``treated`` = touched in [T, T + window) (the logging
    policy touches at random, so untreated persons of the same week are a fair comparison); ``label`` = an
    order or a conversion in [T, T + window]. Untreated units are subsampled (seeded) to at most
    ``control_per_treated`` per treated unit of that date, which keeps the Feast join small.
    """
    import numpy as np

    frame = _resolved(events, ("touch", "order", "conversion"))
    seen = _utc(events.loc[events["person_id"].notna(), "ts"]).groupby(
        events.loc[events["person_id"].notna(), "person_id"].astype(str)).min()
    _, end = data_window(events)
    rng = np.random.default_rng(seed)
    frames = []
    for when in pd.to_datetime(pd.Index(dates), utc=True):
        if when + window > end:
            continue
        units = np.sort(seen.index[seen < when].to_numpy().astype(str))
        span = frame[(frame["ts"] >= when) & (frame["ts"] < when + window)]
        touched = set(span.loc[span["event_type"] == "touch", "person_id"].astype(str))
        bought = set(span.loc[span["event_type"].isin(("order", "conversion")), "person_id"].astype(str))
        treated = np.array([u in touched for u in units], dtype=bool)
        controls = np.flatnonzero(~treated)
        keep = int(min(len(controls), max(1, control_per_treated * treated.sum())))
        chosen = np.sort(np.concatenate([np.flatnonzero(treated), rng.choice(controls, keep, replace=False)]))
        frames.append(pd.DataFrame({"person_id": units[chosen], "event_timestamp": when,
                                    "treated": treated[chosen].astype(int),
                                    "label": [int(u in bought) for u in units[chosen]]}))
    if not frames:
        return pd.DataFrame({"person_id": pd.Series(dtype=str), "event_timestamp": pd.Series(
            dtype="datetime64[ns, UTC]"), "treated": pd.Series(dtype=int), "label": pd.Series(dtype=int)})
    out = pd.concat(frames, ignore_index=True)
    out["event_timestamp"] = _utc(out["event_timestamp"])
    return out


def uplift_training_set(settings: Settings, events: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Weekly uplift units joined to the person features of ``propensity_v1`` as of each date."""
    from features.engineering import snapshot_dates

    start, end = data_window(events)
    units = uplift_units(events, snapshot_dates(start, end - CONVERSION_WINDOW, every_days=7), seed=seed)
    return _join_features(settings, units, "propensity_v1")


# -- recommender and bandit ---------------------------------------------------------------------------
def interactions(events: pd.DataFrame) -> pd.DataFrame:
    """Implicit person x item interactions: person_id, item_id, ts, event_type (time ordered)."""
    frame = _resolved(events, INTERACTION_TYPES)
    frame = frame[frame["item_id"].notna()]
    out = frame[["person_id", "item_id", "ts", "event_type"]].astype({"person_id": str, "item_id": str})
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def bandit_log(events: pd.DataFrame, economics: dict[str, ActionEconomics]) -> pd.DataFrame:
    """Per touch: ts, channel, action_id, converted, value, cost, reward = value * converted - cost.

    Touches of actions missing from the catalog are left out; their count is in ``attrs["unknown"]``.
    """
    touches = touch_outcomes(events)
    known = touches["action_id"].isin(economics)
    log = touches[known]
    value = log["action_id"].map(lambda a: economics[a].value).astype(float)
    cost = log["action_id"].map(lambda a: economics[a].cost).astype(float)
    out = pd.DataFrame({
        "ts": log["event_timestamp"], "channel": log["channel"], "action_id": log["action_id"],
        "converted": log["label"], "value": value, "cost": cost, "reward": value * log["label"] - cost,
    }).reset_index(drop=True)
    out.attrs["unknown"] = int((~known).sum())
    return out


# -- Feast edge ---------------------------------------------------------------------------------------
def _join_features(settings: Settings, labelled: pd.DataFrame, service: str) -> pd.DataFrame:
    """Point-in-time features for the distinct (person_id, event_timestamp) keys, merged back by key."""
    from features.store import historical_features

    entity = labelled[list(KEYS)].drop_duplicates().reset_index(drop=True)
    feats = historical_features(settings, entity, service)
    feats = feats.copy()
    feats["person_id"] = feats["person_id"].astype(str)
    feats["event_timestamp"] = _utc(feats["event_timestamp"])
    feats = feats.drop_duplicates(list(KEYS))
    extra = [c for c in feats.columns if c in labelled.columns and c not in KEYS]
    merged = labelled.merge(feats.drop(columns=extra), on=list(KEYS), how="left", validate="many_to_one")
    return merged


def feature_columns(frame: pd.DataFrame, exclude: tuple[str, ...] = ()) -> list[str]:
    """Model inputs of a training set: everything but keys, labels and bookkeeping columns."""
    skip = set(KEYS) | {"label", "touch_id", "treated"} | set(exclude)
    return [c for c in frame.columns if c not in skip]
