"""Point-in-time feature snapshots per person: RFM and lifecycle, channel engagement, category affinity,
consent.

Pure functions over lake events that carry ``person_id``. Each snapshot at ``as_of`` uses only events
with ``ts <= as_of``, so a training row labelled after ``as_of`` never sees its own future. Work is done
with integer codes and ``np.bincount``, one pass per snapshot date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import CATEGORIES, CHANNELS, CONSENT_CHANNELS

DAY_NS = 86_400 * 10**9
NEVER_DAYS = 999.0
OUTBOUND_CHANNELS: tuple[str, ...] = CONSENT_CHANNELS
VISIT_EVENT_TYPES: tuple[str, ...] = ("page_view", "product_view", "add_to_cart", "login", "order")
LIFECYCLE_STAGES: tuple[str, ...] = ("new", "active", "at_risk", "lapsed", "reactivated")
VIEW_NAMES: tuple[str, ...] = (
    "person_rfm", "person_channel_engagement", "person_category_affinity", "person_consent",
)

RFM_FEATURES: dict[str, str] = {
    "recency_days": "float", "frequency_30d": "int", "frequency_90d": "int", "monetary_30d": "float",
    "monetary_90d": "float", "avg_order_value": "float", "orders_total": "int", "tenure_days": "float",
    "days_since_last_visit": "float", "lifecycle_stage": "int", "orders_per_30d": "float",
}
ENGAGEMENT_FEATURES: dict[str, str] = {
    **{f"{c}_events_30d": "int" for c in CHANNELS},
    "events_30d": "int",
    **{f"{c}_clicks_90d": "int" for c in OUTBOUND_CHANNELS},
    **{f"{c}_conversions_90d": "int" for c in OUTBOUND_CHANNELS},
    "touches_30d": "int", "click_rate_90d": "float",
}
AFFINITY_FEATURES: dict[str, str] = {**{f"affinity_{c}": "float" for c in CATEGORIES}, "top_category": "int"}
CONSENT_FEATURES: dict[str, str] = {f"consent_{c}": "int" for c in CONSENT_CHANNELS}
# Feature name → kind ("int" → int64, "float" → float64) per view; names are unique across views.
VIEW_FEATURES: dict[str, dict[str, str]] = {
    "person_rfm": RFM_FEATURES,
    "person_channel_engagement": ENGAGEMENT_FEATURES,
    "person_category_affinity": AFFINITY_FEATURES,
    "person_consent": CONSENT_FEATURES,
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


@dataclass(frozen=True)
class _Events:
    """Events as aligned numpy arrays, sorted by (ts, event_id)."""

    persons: np.ndarray
    code: np.ndarray
    ts: np.ndarray
    first_ts: np.ndarray
    channel: np.ndarray
    outbound: np.ndarray
    event_type: np.ndarray
    amount: np.ndarray
    category: np.ndarray
    order_gap_days: np.ndarray
    consent_channel: np.ndarray
    granted: np.ndarray


def _codes(values: pd.Series, vocabulary: Iterable[str]) -> np.ndarray:
    return pd.Categorical(values, categories=list(vocabulary)).codes.astype(np.int64)


def _prepare(events: pd.DataFrame) -> _Events:
    ev = events[events["person_id"].notna()].sort_values(["ts", "event_id"], kind="stable")
    code, persons = pd.factorize(ev["person_id"], sort=True)
    ts = pd.DatetimeIndex(ev["ts"]).tz_convert("UTC").asi8
    p = len(persons)
    first_ts = np.full(p, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_ts, code, ts)
    event_type = ev["event_type"].to_numpy(dtype=object)
    is_order = event_type == "order"
    gap = np.full(len(ev), np.nan)  # NaN: not an order, or a person's first order
    order_pos = np.flatnonzero(is_order)
    if len(order_pos):
        prev = pd.Series(ts[order_pos]).groupby(code[order_pos]).shift(1).to_numpy(dtype=float)
        gap[order_pos] = (ts[order_pos] - prev) / DAY_NS
    granted = ev["granted"].astype("boolean")
    return _Events(
        persons=np.asarray(persons, dtype=object), code=code.astype(np.int64), ts=ts, first_ts=first_ts,
        channel=_codes(ev["channel"], CHANNELS), outbound=_codes(ev["channel"], OUTBOUND_CHANNELS),
        event_type=event_type, amount=ev["amount"].fillna(0.0).to_numpy(dtype=float),
        category=_codes(ev["category"], CATEGORIES), order_gap_days=gap,
        consent_channel=np.where(granted.isna().to_numpy(), -1, _codes(ev["consent_channel"], CONSENT_CHANNELS)),
        granted=granted.fillna(False).to_numpy(dtype=bool),
    )


def _count(codes: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(codes, weights=weights, minlength=n)


def _last_ts(ev: _Events, mask: np.ndarray, n: int) -> np.ndarray:
    last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, ev.code[mask], ev.ts[mask])
    return last


def _days_since(as_of: int, last: np.ndarray) -> np.ndarray:
    none = last == np.iinfo(np.int64).min
    return np.where(none, NEVER_DAYS, (as_of - last) / DAY_NS)


def _rfm(ev: _Events, as_of: int, upto: np.ndarray) -> dict[str, np.ndarray]:
    """Lifecycle rule, checked in this order (first match wins): 0 new (first seen < 30 days ago),
    4 reactivated (an order in the last 30 days whose previous order was > 90 days before it),
    1 active (order in the last 30 days), 2 at_risk (last order 30–90 days ago), 3 lapsed (last order
    > 90 days ago, or never ordered and not new)."""
    n = len(ev.persons)
    orders = upto & (ev.event_type == "order")
    in30 = ev.ts > as_of - 30 * DAY_NS
    in90 = ev.ts > as_of - 90 * DAY_NS
    total = _count(ev.code[orders], n)
    money = _count(ev.code[orders], n, ev.amount[orders])
    recency = _days_since(as_of, _last_ts(ev, orders, n))
    visits = upto & np.isin(ev.event_type, VISIT_EVENT_TYPES)
    tenure = (as_of - ev.first_ts) / DAY_NS
    back = orders & in30 & (ev.order_gap_days > 90)
    reactivated = _count(ev.code[back], n) > 0
    stage = np.full(n, 3, dtype=np.int64)
    stage[(recency > 30) & (recency <= 90)] = 2
    stage[recency <= 30] = 1
    stage[reactivated] = 4
    stage[tenure < 30] = 0
    return {
        "recency_days": recency,
        "frequency_30d": _count(ev.code[orders & in30], n),
        "frequency_90d": _count(ev.code[orders & in90], n),
        "monetary_30d": _count(ev.code[orders & in30], n, ev.amount[orders & in30]),
        "monetary_90d": _count(ev.code[orders & in90], n, ev.amount[orders & in90]),
        "avg_order_value": np.divide(money, total, out=np.zeros(n), where=total > 0),
        "orders_total": total,
        "tenure_days": tenure,
        "days_since_last_visit": _days_since(as_of, _last_ts(ev, visits, n)),
        "lifecycle_stage": stage,
        # the order rate over the whole tenure: with recency, what tells a slow buyer from a lost one
        "orders_per_30d": total * 30.0 / np.maximum(tenure, 1.0),
    }


def _matrix(ev: _Events, mask: np.ndarray, column: np.ndarray, width: int) -> np.ndarray:
    n = len(ev.persons)
    mask = mask & (column >= 0)
    return _count(ev.code[mask] * width + column[mask], n * width).reshape(n, width)


def _engagement(ev: _Events, as_of: int, upto: np.ndarray) -> dict[str, np.ndarray]:
    n = len(ev.persons)
    in30 = upto & (ev.ts > as_of - 30 * DAY_NS)
    in90 = upto & (ev.ts > as_of - 90 * DAY_NS)
    out: dict[str, np.ndarray] = {}
    per_channel = _matrix(ev, in30, ev.channel, len(CHANNELS))
    for i, c in enumerate(CHANNELS):
        out[f"{c}_events_30d"] = per_channel[:, i]
    out["events_30d"] = per_channel.sum(axis=1)
    clicks = _matrix(ev, in90 & (ev.event_type == "click"), ev.outbound, len(OUTBOUND_CHANNELS))
    conversions = _matrix(ev, in90 & (ev.event_type == "conversion"), ev.outbound, len(OUTBOUND_CHANNELS))
    for i, c in enumerate(OUTBOUND_CHANNELS):
        out[f"{c}_clicks_90d"] = clicks[:, i]
    for i, c in enumerate(OUTBOUND_CHANNELS):
        out[f"{c}_conversions_90d"] = conversions[:, i]
    touches90 = _count(ev.code[in90 & (ev.event_type == "touch")], n)
    clicks90 = _count(ev.code[in90 & (ev.event_type == "click")], n)
    out["touches_30d"] = _count(ev.code[in30 & (ev.event_type == "touch")], n)
    rate = np.divide(clicks90, touches90, out=np.zeros(n), where=touches90 > 0)
    out["click_rate_90d"] = np.minimum(rate, 1.0)
    return out


def _affinity(ev: _Events, upto: np.ndarray) -> dict[str, np.ndarray]:
    relevant = upto & np.isin(ev.event_type, ("product_view", "order"))
    counts = _matrix(ev, relevant, ev.category, len(CATEGORIES)).astype(float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    out = {f"affinity_{c}": shares[:, i] for i, c in enumerate(CATEGORIES)}
    out["top_category"] = np.where(totals[:, 0] > 0, counts.argmax(axis=1), -1).astype(np.int64)
    return out


def _consent(ev: _Events, upto: np.ndarray) -> dict[str, np.ndarray]:
    """Latest consent event per (person, channel) up to as_of; no event means no consent (0)."""
    n, width = len(ev.persons), len(CONSENT_CHANNELS)
    mask = upto & (ev.event_type == "consent") & (ev.consent_channel >= 0)
    state = np.zeros(n * width, dtype=np.int64)
    # events are sorted by time, so the last write per (person, channel) is the latest consent event
    slot = ev.code[mask] * width + ev.consent_channel[mask]
    latest = pd.Series(ev.granted[mask]).groupby(slot).last()
    state[latest.index.to_numpy()] = latest.to_numpy().astype(np.int64)
    state = state.reshape(n, width)
    return {f"consent_{c}": state[:, i] for i, c in enumerate(CONSENT_CHANNELS)}


def _frame(ev: _Events, seen: np.ndarray, as_of: pd.Timestamp, columns: dict[str, np.ndarray],
           kinds: dict[str, str]) -> pd.DataFrame:
    data = {"person_id": ev.persons[seen], "event_timestamp": pd.Series(as_of, index=range(int(seen.sum())))}
    for name, kind in kinds.items():
        data[name] = columns[name][seen].astype(np.int64 if kind == "int" else np.float64)
    frame = pd.DataFrame(data)
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[ns, UTC]")
    return frame


def build_feature_snapshots(events_with_person_id: pd.DataFrame, as_of_dates: Iterable
                            ) -> dict[str, pd.DataFrame]:
    """Feature frames per view: one row per (person seen by as_of, as_of), features from ``ts <= as_of``.

    Columns: ``person_id``, ``event_timestamp`` (= as_of, UTC), then the view's features in
    :data:`VIEW_FEATURES` order (int64/float64).
    """
    ev = _prepare(events_with_person_id)
    parts: dict[str, list[pd.DataFrame]] = {view: [] for view in VIEW_NAMES}
    for as_of in sorted({_utc(d) for d in as_of_dates}):
        t = as_of.value
        seen = ev.first_ts <= t
        upto = ev.ts <= t
        computed = {
            "person_rfm": _rfm(ev, t, upto),
            "person_channel_engagement": _engagement(ev, t, upto),
            "person_category_affinity": _affinity(ev, upto),
            "person_consent": _consent(ev, upto),
        }
        for view in VIEW_NAMES:
            parts[view].append(_frame(ev, seen, as_of, computed[view], VIEW_FEATURES[view]))
    result = {}
    for view in VIEW_NAMES:
        if parts[view]:
            result[view] = pd.concat(parts[view], ignore_index=True)
        else:
            result[view] = _frame(ev, np.zeros(len(ev.persons), dtype=bool), pd.Timestamp(0, tz="UTC"),
                                  {k: np.zeros(len(ev.persons)) for k in VIEW_FEATURES[view]},
                                  VIEW_FEATURES[view])
    return result


def write_feature_tables(frames: dict[str, pd.DataFrame], features_dir: Path) -> dict[str, Path]:
    """Write each view's frame to ``features_dir/<view>.parquet`` (the Feast file sources read these)."""
    features_dir = Path(features_dir)
    features_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for view, frame in frames.items():
        paths[view] = features_dir / f"{view}.parquet"
        frame.to_parquet(paths[view], index=False)
    return paths
