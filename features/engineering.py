"""Point-in-time feature snapshots per person: RFM and lifecycle, channel engagement, category affinity,
consent, browsing sessions and per-channel responses (engineering_activity), shopping behaviour
(engineering_behaviour) and lifetime value and activity forecasts (engineering_value).

Pure functions over lake events that carry ``person_id``. Each snapshot at ``as_of`` uses only events
with ``ts <= as_of``, so a training row labelled after ``as_of`` never sees its own future. Work is done
with integer codes and ``np.bincount`` (engineering_base), one pass per snapshot date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from config.settings import ACTIONS_FILE
from features.engineering_activity import (
    CHANNEL_RESPONSE_FEATURES,
    SESSION_FEATURES,
    channel_response_features,
    session_features,
)
from features.engineering_base import (
    CONSENT_PURPOSES,
    DAY_NS,
    NEVER_DAYS,
    OUTBOUND_CHANNELS,
    CodedEvents,
    count,
    days_since,
    is_type,
    last_ts,
    matrix,
    prepare_events,
)
from features.engineering_behaviour import BEHAVIOUR_FEATURES, behaviour_features
from features.engineering_value import VALUE_FEATURES, ValueModels, fit_value_models, value_features
from features.schema import CATEGORIES, CHANNELS, CONSENT_CHANNELS

__all__ = [
    "AFFINITY_FEATURES", "BEHAVIOUR_FEATURES", "CONSENT_FEATURES", "DAY_NS", "ENGAGEMENT_FEATURES",
    "LIFECYCLE_STAGES", "NEVER_DAYS", "RFM_FEATURES", "VALUE_FEATURES", "VIEW_FEATURES", "VIEW_NAMES",
    "build_feature_snapshots", "catalog_discounts", "latest_value_models", "snapshot_dates",
    "write_feature_tables",
]

LIFECYCLE_STAGES: tuple[str, ...] = ("new", "active", "at_risk", "lapsed", "reactivated")
VIEW_NAMES: tuple[str, ...] = (
    "person_rfm", "person_channel_engagement", "person_category_affinity", "person_consent",
    "person_behaviour", "person_value",
)

RFM_FEATURES: dict[str, str] = {
    "recency_days": "float", "frequency_30d": "int", "frequency_90d": "int", "monetary_30d": "float",
    "monetary_90d": "float", "avg_order_value": "float", "orders_total": "int", "tenure_days": "float",
    "days_since_last_visit": "float", "lifecycle_stage": "int", "orders_per_30d": "float",
    "frequency_365d": "int", "monetary_365d": "float", "avg_days_between_orders": "float",
    **SESSION_FEATURES,
}
_WINDOW_TOTALS = ("events_7d", "events_90d", "visits_7d", "visits_30d", "visits_90d", "opens_30d",
                  "clicks_7d", "clicks_30d", "conversions_7d", "conversions_30d", "touches_90d")
ENGAGEMENT_FEATURES: dict[str, str] = {
    **{f"{c}_events_30d": "int" for c in CHANNELS},
    "events_30d": "int",
    **{f"{c}_clicks_90d": "int" for c in OUTBOUND_CHANNELS},
    **{f"{c}_conversions_90d": "int" for c in OUTBOUND_CHANNELS},
    "touches_30d": "int", "click_rate_90d": "float",
    **{f"{c}_opens_90d": "int" for c in OUTBOUND_CHANNELS},
    **{name: "int" for name in _WINDOW_TOTALS},
    "open_rate_90d": "float", "conversion_rate_90d": "float",
    **CHANNEL_RESPONSE_FEATURES,
}
AFFINITY_FEATURES: dict[str, str] = {
    **{f"affinity_{c}": "float" for c in CATEGORIES}, "top_category": "int",
    "categories_engaged": "int", "category_entropy": "float",
}
CONSENT_FEATURES: dict[str, str] = {
    **{f"consent_{c}": "int" for c in CONSENT_CHANNELS},
    **{f"consent_{c}_{p}": "int" for c in CONSENT_CHANNELS for p in CONSENT_PURPOSES},
    "consented_channels": "int",
}
# Feature name → kind ("int" → int64, "float" → float64) per view; names are unique across views.
VIEW_FEATURES: dict[str, dict[str, str]] = {
    "person_rfm": RFM_FEATURES,
    "person_channel_engagement": ENGAGEMENT_FEATURES,
    "person_category_affinity": AFFINITY_FEATURES,
    "person_consent": CONSENT_FEATURES,
    "person_behaviour": BEHAVIOUR_FEATURES,
    "person_value": VALUE_FEATURES,
}


def snapshot_dates(start: date | datetime | str, end: date | datetime | str, every_days: int = 7
                   ) -> list[pd.Timestamp]:
    """UTC timestamps from ``start`` every ``every_days`` days, always including ``end``."""
    if every_days < 1:
        raise ValueError(f"every_days must be >= 1, got {every_days}")
    first, last = _utc(start), _utc(end)
    if last < first:
        raise ValueError(f"end must not be before start, got start={first} end={last}")
    dates = list(pd.date_range(first, last, freq=pd.Timedelta(days=every_days)))
    if dates[-1] != last:
        dates.append(last)
    return dates


def _utc(value: date | datetime | str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def catalog_discounts(actions_file: Path = ACTIONS_FILE) -> dict[str, float]:
    """Action id → discount depth (0..1) from the action catalog, for the discount-sensitivity features."""
    raw = yaml.safe_load(Path(actions_file).read_text()) or {}
    return {str(a["id"]): float(a.get("discount", 0.0) or 0.0) for a in raw.get("actions", [])}


def _rfm(ev: CodedEvents, as_of: int, upto: np.ndarray) -> dict[str, np.ndarray]:
    """Lifecycle rule, checked in this order (first match wins): 0 new (first seen < 30 days ago),
    4 reactivated (an order in the last 30 days whose previous order was > 90 days before it),
    1 active (order in the last 30 days), 2 at_risk (last order 30–90 days ago), 3 lapsed (last order
    > 90 days ago, or never ordered and not new)."""
    n = ev.n_persons
    orders = upto & ev.is_order
    in30, in90, in365 = (ev.ts > as_of - d * DAY_NS for d in (30, 90, 365))
    total = count(ev.code[orders], n)
    money = count(ev.code[orders], n, ev.amount[orders])
    recency = days_since(as_of, last_ts(ev, orders))
    visits = upto & ev.is_visit
    tenure = (as_of - ev.first_ts) / DAY_NS
    back = orders & in30 & (ev.order_gap_days > 90)
    reactivated = count(ev.code[back], n) > 0
    stage = np.full(n, 3, dtype=np.int64)
    stage[(recency > 30) & (recency <= 90)] = 2
    stage[recency <= 30] = 1
    stage[reactivated] = 4
    stage[tenure < 30] = 0
    gaps = orders & ~np.isnan(ev.order_gap_days)
    n_gaps = count(ev.code[gaps], n)
    return {
        "recency_days": recency,
        "frequency_30d": count(ev.code[orders & in30], n),
        "frequency_90d": count(ev.code[orders & in90], n),
        "monetary_30d": count(ev.code[orders & in30], n, ev.amount[orders & in30]),
        "monetary_90d": count(ev.code[orders & in90], n, ev.amount[orders & in90]),
        "avg_order_value": np.divide(money, total, out=np.zeros(n), where=total > 0),
        "orders_total": total,
        "tenure_days": tenure,
        "days_since_last_visit": days_since(as_of, last_ts(ev, visits)),
        "lifecycle_stage": stage,
        # the order rate over the whole tenure: with recency, what tells a slow buyer from a lost one
        "orders_per_30d": total * 30.0 / np.maximum(tenure, 1.0),
        "frequency_365d": count(ev.code[orders & in365], n),
        "monetary_365d": count(ev.code[orders & in365], n, ev.amount[orders & in365]),
        # mean gap between consecutive orders; NEVER_DAYS with fewer than two orders
        "avg_days_between_orders": np.divide(count(ev.code[gaps], n, ev.order_gap_days[gaps]), n_gaps,
                                             out=np.full(n, NEVER_DAYS), where=n_gaps > 0),
    }


def _engagement(ev: CodedEvents, as_of: int, upto: np.ndarray) -> dict[str, np.ndarray]:
    n = ev.n_persons
    in7, in30, in90 = (upto & (ev.ts > as_of - d * DAY_NS) for d in (7, 30, 90))
    out: dict[str, np.ndarray] = {}
    per_channel = matrix(ev, in30, ev.channel, len(CHANNELS))
    for i, c in enumerate(CHANNELS):
        out[f"{c}_events_30d"] = per_channel[:, i]
    out["events_30d"] = per_channel.sum(axis=1)
    kind = {t: is_type(ev, t) for t in ("touch", "open", "click", "conversion")}
    for name, t in (("clicks", "click"), ("conversions", "conversion"), ("opens", "open")):
        per = matrix(ev, in90 & kind[t], ev.outbound, len(OUTBOUND_CHANNELS))
        for i, c in enumerate(OUTBOUND_CHANNELS):
            out[f"{c}_{name}_90d"] = per[:, i]
    touches90 = count(ev.code[in90 & kind["touch"]], n)
    clicks90 = count(ev.code[in90 & kind["click"]], n)
    out["touches_30d"] = count(ev.code[in30 & kind["touch"]], n)
    out["click_rate_90d"] = np.minimum(np.divide(clicks90, touches90, out=np.zeros(n), where=touches90 > 0), 1.0)
    windows = {"7d": in7, "30d": in30, "90d": in90}
    masks = {"events": None, "visits": ev.is_visit, "opens": kind["open"], "clicks": kind["click"],
             "conversions": kind["conversion"], "touches": kind["touch"]}
    for name in _WINDOW_TOTALS:
        what, window = name.rsplit("_", 1)
        mask = windows[window] if masks[what] is None else windows[window] & masks[what]
        out[name] = count(ev.code[mask], n)
    opens90 = count(ev.code[in90 & kind["open"]], n)
    conversions90 = count(ev.code[in90 & kind["conversion"]], n)
    out["open_rate_90d"] = np.minimum(np.divide(opens90, touches90, out=np.zeros(n), where=touches90 > 0), 1.0)
    out["conversion_rate_90d"] = np.minimum(
        np.divide(conversions90, touches90, out=np.zeros(n), where=touches90 > 0), 1.0)
    return out


def _affinity(ev: CodedEvents, upto: np.ndarray) -> dict[str, np.ndarray]:
    relevant = upto & is_type(ev, "product_view", "order")
    counts = matrix(ev, relevant, ev.category, len(CATEGORIES)).astype(float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    out = {f"affinity_{c}": shares[:, i] for i, c in enumerate(CATEGORIES)}
    out["top_category"] = np.where(totals[:, 0] > 0, counts.argmax(axis=1), -1).astype(np.int64)
    out["categories_engaged"] = (counts > 0).sum(axis=1).astype(np.int64)
    logs = np.log(shares, out=np.zeros_like(shares), where=shares > 0)
    out["category_entropy"] = -(shares * logs).sum(axis=1)
    return out


def _latest_state(ev: CodedEvents, mask: np.ndarray, column: np.ndarray, width: int) -> np.ndarray:
    """(n_persons, width) 0/1: the ``granted`` flag of the latest ``mask`` event per (person, column)."""
    state = np.zeros(ev.n_persons * width, dtype=np.int64)
    mask = mask & (column >= 0)
    # events are sorted by time, so the last write per (person, column) is the latest consent event
    slot = ev.code[mask] * width + column[mask]
    latest = pd.Series(ev.granted[mask]).groupby(slot).last()
    state[latest.index.to_numpy()] = latest.to_numpy().astype(np.int64)
    return state.reshape(ev.n_persons, width)


def _consent(ev: CodedEvents, upto: np.ndarray) -> dict[str, np.ndarray]:
    """Latest consent event per (person, channel) up to as_of, any purpose (``consent_<channel>``) and per
    purpose (``consent_<channel>_<purpose>``); no event means no consent (0)."""
    consent = upto & is_type(ev, "consent")
    per_channel = _latest_state(ev, consent, ev.consent_channel, len(CONSENT_CHANNELS))
    out = {f"consent_{c}": per_channel[:, i] for i, c in enumerate(CONSENT_CHANNELS)}
    k = len(CONSENT_PURPOSES)
    combined = np.where((ev.consent_channel >= 0) & (ev.purpose >= 0), ev.consent_channel * k + ev.purpose, -1)
    per_purpose = _latest_state(ev, consent, combined, len(CONSENT_CHANNELS) * k)
    for i, c in enumerate(CONSENT_CHANNELS):
        for j, p in enumerate(CONSENT_PURPOSES):
            out[f"consent_{c}_{p}"] = per_purpose[:, i * k + j]
    out["consented_channels"] = per_channel.sum(axis=1)
    return out


def _frame(ev: CodedEvents, seen: np.ndarray, as_of: pd.Timestamp, columns: dict[str, np.ndarray],
           kinds: dict[str, str]) -> pd.DataFrame:
    data = {"person_id": ev.persons[seen]}
    for name, kind in kinds.items():
        data[name] = columns[name][seen].astype(np.int64 if kind == "int" else np.float64)
    frame = pd.DataFrame(data)
    frame.insert(1, "event_timestamp", pd.Series(np.full(len(frame), as_of.value, dtype="datetime64[ns]"))
                 .dt.tz_localize("UTC"))
    return frame


def build_feature_snapshots(events_with_person_id: pd.DataFrame, as_of_dates: Iterable, *,
                            action_discounts: Mapping[str, float] | None = None,
                            value_models: ValueModels | None = None,
                            persons: Iterable[str] | None = None,
                            category_prices: np.ndarray | None = None) -> dict[str, pd.DataFrame]:
    """Feature frames per view: one row per (person seen by as_of, as_of), features from ``ts <= as_of``.

    Columns: ``person_id``, ``event_timestamp`` (= as_of, UTC), then the view's features in
    :data:`VIEW_FEATURES` order (int64/float64). ``action_discounts`` defaults to the action catalog;
    ``value_models`` fixes the CLV models (else fitted per snapshot on the history up to it);
    ``persons`` keeps only those persons' rows (the other persons still inform population statistics);
    ``category_prices`` fixes the population's mean price per category (a real-time update computes
    features from a few persons' events and supplies the population's figures and ``value_models``).
    """
    discounts = catalog_discounts() if action_discounts is None else action_discounts
    ev = prepare_events(events_with_person_id, discounts)
    wanted = None if persons is None else np.isin(ev.persons, np.asarray(list(persons), dtype=object))
    parts: dict[str, list[pd.DataFrame]] = {view: [] for view in VIEW_NAMES}
    previous: ValueModels | None = None
    for as_of in sorted({_utc(d) for d in as_of_dates}):
        t = as_of.value
        seen = ev.first_ts <= t
        if wanted is not None:
            seen &= wanted
        upto = ev.ts <= t
        value, previous = value_features(ev, t, upto, value_models, previous)
        computed = {
            "person_rfm": {**_rfm(ev, t, upto), **session_features(ev, t, upto)},
            "person_channel_engagement": {**_engagement(ev, t, upto), **channel_response_features(ev, upto)},
            "person_category_affinity": _affinity(ev, upto),
            "person_consent": _consent(ev, upto),
            "person_behaviour": behaviour_features(ev, t, upto, category_prices),
            "person_value": value,
        }
        for view in VIEW_NAMES:
            parts[view].append(_frame(ev, seen, as_of, computed[view], VIEW_FEATURES[view]))
    result = {}
    for view in VIEW_NAMES:
        if parts[view]:
            result[view] = pd.concat(parts[view], ignore_index=True)
        else:
            result[view] = _frame(ev, np.zeros(ev.n_persons, dtype=bool), pd.Timestamp(0, tz="UTC"),
                                  {k: np.zeros(ev.n_persons) for k in VIEW_FEATURES[view]},
                                  VIEW_FEATURES[view])
    return result


def latest_value_models(events_with_person_id: pd.DataFrame, as_of, *,
                        action_discounts: Mapping[str, float] | None = None) -> ValueModels:
    """The CLV models of the snapshot at ``as_of`` (what real-time updates reuse between rebuilds)."""
    ev = prepare_events(events_with_person_id, catalog_discounts() if action_discounts is None else action_discounts)
    return fit_value_models(ev, _utc(as_of).value)


def write_feature_tables(frames: dict[str, pd.DataFrame], features_dir: Path) -> dict[str, Path]:
    """Write each view's frame to ``features_dir/<view>.parquet`` (the Feast file sources read these)."""
    features_dir = Path(features_dir)
    features_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for view, frame in frames.items():
        paths[view] = features_dir / f"{view}.parquet"
        frame.to_parquet(paths[view], index=False)
    return paths

