"""Lake events as aligned integer-coded numpy arrays, and the counting helpers every feature group uses.

Feature groups (``engineering.py``, ``engineering_behaviour.py``, ``engineering_value.py``) take a
:class:`CodedEvents` and a snapshot time and return ``{feature: array over persons}``; they never loop over
persons, so one snapshot of 100,000 persons costs a few ``np.bincount`` calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.schema import CATEGORIES, CHANNELS, CONSENT_CHANNELS, EVENT_TYPES

__all__ = [
    "BROWSE_EVENT_TYPES", "CONSENT_PURPOSES", "DAY_NS", "NEVER_DAYS", "OUTBOUND_CHANNELS", "SESSION_GAP_NS",
    "VISIT_EVENT_TYPES", "CodedEvents",
    "count", "days_since", "is_type", "last_ts", "matrix", "prepare_events",
]

DAY_NS = 86_400 * 10**9
NEVER_DAYS = 999.0
OUTBOUND_CHANNELS: tuple[str, ...] = CONSENT_CHANNELS
VISIT_EVENT_TYPES: tuple[str, ...] = ("page_view", "product_view", "add_to_cart", "login", "order")
# Browsing events; one that follows the person's previous browsing event by more than the gap opens a session.
BROWSE_EVENT_TYPES: tuple[str, ...] = ("page_view", "product_view", "add_to_cart", "login")
SESSION_GAP_NS = 30 * 60 * 10**9
# Purposes a consent event can name (properties.purpose); other purposes count only for consent_<channel>.
CONSENT_PURPOSES: tuple[str, ...] = ("marketing", "service")
_MAX = np.iinfo(np.int64).max
_MIN = np.iinfo(np.int64).min


@dataclass(frozen=True)
class CodedEvents:
    """Events of persons as aligned arrays, sorted by (ts, event_id); ``code`` indexes ``persons``."""

    persons: np.ndarray
    code: np.ndarray
    ts: np.ndarray            # int64 ns UTC
    first_ts: np.ndarray      # per person: first event
    channel: np.ndarray       # code in CHANNELS, -1 unknown
    outbound: np.ndarray      # code in OUTBOUND_CHANNELS, -1 otherwise
    event_type: np.ndarray    # code in EVENT_TYPES, -1 unknown
    is_order: np.ndarray
    is_visit: np.ndarray      # a VISIT_EVENT_TYPES event
    amount: np.ndarray        # 0.0 where missing
    category: np.ndarray      # code in CATEGORIES, -1 unknown
    order_gap_days: np.ndarray  # NaN: not an order, or a person's first order
    first_line_of_order: np.ndarray  # the first event of its (person, order_id): counts distinct orders
    first_order_of_day: np.ndarray   # the first order event of its (person, UTC day): purchase days
    day: np.ndarray           # UTC day number (ts // DAY_NS)
    hour: np.ndarray          # 0..23 UTC
    weekday: np.ndarray       # 0 = Monday
    discount: np.ndarray      # discount depth of the event's action (0 without one)
    has_action: np.ndarray
    consent_channel: np.ndarray  # code in CONSENT_CHANNELS, -1 for non-consent events
    purpose: np.ndarray          # code in CONSENT_PURPOSES, -1 otherwise
    granted: np.ndarray
    session_start: np.ndarray    # a browsing event that opens a session (see BROWSE_EVENT_TYPES)

    @property
    def n_persons(self) -> int:
        return len(self.persons)


def _codes(values: pd.Series, vocabulary: Iterable[str]) -> np.ndarray:
    return pd.Categorical(values, categories=list(vocabulary)).codes.astype(np.int64)


def _first_of_group(keys: list[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """True for the first (in array order) row of each key group among ``mask`` rows."""
    out = np.zeros(len(mask), dtype=bool)
    pos = np.flatnonzero(mask)
    if len(pos):
        frame = pd.DataFrame({f"k{i}": k[pos] for i, k in enumerate(keys)})
        out[pos[~frame.duplicated(keep="first").to_numpy()]] = True
    return out


def _sorted_by_time(events: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by (ts, event_id); only rows sharing a timestamp pay for the string comparison."""
    ts = pd.DatetimeIndex(events["ts"]).asi8
    order = np.argsort(ts, kind="stable")
    tied = np.zeros(len(order), dtype=bool)
    same = ts[order][1:] == ts[order][:-1]
    tied[1:] |= same
    tied[:-1] |= same
    if tied.any():
        pos = np.flatnonzero(tied)
        sub = pd.DataFrame({"ts": ts[order[pos]], "event_id": events["event_id"].to_numpy()[order[pos]]})
        order[pos] = order[pos][np.lexsort((sub["event_id"].astype(str).to_numpy(), sub["ts"].to_numpy()))]
    return events.iloc[order]


def _session_starts(code: np.ndarray, ts: np.ndarray, browse: np.ndarray) -> np.ndarray:
    """True for browsing events more than SESSION_GAP_NS after the same person's previous browsing event.

    Why sessions and not events: the events of one visit come in a burst of random size, so counting them
    measures the burst noise as much as how often the person comes back.
    """
    out = np.zeros(len(code), dtype=bool)
    pos = np.flatnonzero(browse)
    if len(pos):
        pos = pos[np.lexsort((ts[pos], code[pos]))]
        new = np.ones(len(pos), dtype=bool)
        new[1:] = (code[pos][1:] != code[pos][:-1]) | (ts[pos][1:] - ts[pos][:-1] > SESSION_GAP_NS)
        out[pos[new]] = True
    return out


def prepare_events(events: pd.DataFrame, action_discounts: Mapping[str, float] | None = None) -> CodedEvents:
    """Code lake events that carry ``person_id`` (rows without one are ignored).

    ``action_discounts`` maps action ids to their discount depth (0..1), from the action catalog.
    """
    ev = _sorted_by_time(events[events["person_id"].notna()])
    code, persons = pd.factorize(ev["person_id"], sort=True)
    code = code.astype(np.int64)
    ts = pd.DatetimeIndex(ev["ts"]).tz_convert("UTC").asi8
    first_ts = np.full(len(persons), _MAX, dtype=np.int64)
    np.minimum.at(first_ts, code, ts)
    event_type = _codes(ev["event_type"], EVENT_TYPES)
    is_order = event_type == EVENT_TYPES.index("order")
    gap = np.full(len(ev), np.nan)
    order_pos = np.flatnonzero(is_order)
    if len(order_pos):
        prev = pd.Series(ts[order_pos]).groupby(code[order_pos]).shift(1).to_numpy(dtype=float)
        gap[order_pos] = (ts[order_pos] - prev) / DAY_NS
    day = ts // DAY_NS
    order_id = ev["order_id"].astype(object).where(ev["order_id"].notna(), ev["event_id"]).to_numpy(dtype=object)
    stamps = pd.DatetimeIndex(ev["ts"]).tz_convert("UTC")
    action = ev["action_id"].astype(object)
    discounts = dict(action_discounts or {})
    granted = ev["granted"].astype("boolean")
    is_consent = ~granted.isna().to_numpy()
    return CodedEvents(
        persons=np.asarray(persons, dtype=object), code=code, ts=ts, first_ts=first_ts,
        channel=_codes(ev["channel"], CHANNELS), outbound=_codes(ev["channel"], OUTBOUND_CHANNELS),
        event_type=event_type, is_order=is_order,
        is_visit=np.isin(event_type, [EVENT_TYPES.index(t) for t in VISIT_EVENT_TYPES]), amount=ev["amount"].fillna(0.0).to_numpy(dtype=float),
        category=_codes(ev["category"], CATEGORIES), order_gap_days=gap,
        first_line_of_order=_first_of_group([code, order_id], is_order),
        first_order_of_day=_first_of_group([code, day], is_order),
        day=day, hour=stamps.hour.to_numpy(dtype=np.int64), weekday=stamps.weekday.to_numpy(dtype=np.int64),
        discount=action.map(discounts).fillna(0.0).to_numpy(dtype=float),
        has_action=action.notna().to_numpy(),
        consent_channel=np.where(is_consent, _codes(ev["consent_channel"], CONSENT_CHANNELS), -1),
        purpose=np.where(is_consent, _codes(ev["purpose"], CONSENT_PURPOSES), -1),
        granted=granted.fillna(False).to_numpy(dtype=bool),
        session_start=_session_starts(code, ts, np.isin(event_type, [EVENT_TYPES.index(t) for t in BROWSE_EVENT_TYPES])),
    )


def count(codes: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-person count (or weighted sum) of the rows with person ``codes``; length ``n``."""
    return np.bincount(codes, weights=weights, minlength=n)


def matrix(ev: CodedEvents, mask: np.ndarray, column: np.ndarray, width: int,
           weights: np.ndarray | None = None) -> np.ndarray:
    """(n_persons, width) counts of ``mask`` rows by ``column`` code (rows with code -1 ignored)."""
    n = ev.n_persons
    mask = mask & (column >= 0)
    w = None if weights is None else weights[mask]
    return np.bincount(ev.code[mask] * width + column[mask], weights=w, minlength=n * width).reshape(n, width)


def last_ts(ev: CodedEvents, mask: np.ndarray) -> np.ndarray:
    """Per person: latest ts of ``mask`` rows (int64 min where none)."""
    last = np.full(ev.n_persons, _MIN, dtype=np.int64)
    np.maximum.at(last, ev.code[mask], ev.ts[mask])
    return last


def days_since(as_of: int, last: np.ndarray) -> np.ndarray:
    """Days from ``last`` to ``as_of``; :data:`NEVER_DAYS` where there was no event."""
    return np.where(last == _MIN, NEVER_DAYS, (as_of - last) / DAY_NS)


def is_type(ev: CodedEvents, *event_types: str) -> np.ndarray:
    """Boolean mask of events whose type is one of ``event_types`` (names from EVENT_TYPES)."""
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"event_types must be in EVENT_TYPES, got {unknown}")
    if len(event_types) == 1:
        return ev.event_type == EVENT_TYPES.index(event_types[0])
    return np.isin(ev.event_type, [EVENT_TYPES.index(t) for t in event_types])
