"""Activity features: browsing sessions (how often a person comes back, and for how long they have not)
and responses per outbound channel (how each channel's messages land with this person).

Definitions (all over events with ``ts <= as_of``; a session is opened by a browsing event more than 30
minutes after the person's previous one, see ``engineering_base``):

- ``sessions_total``, ``sessions_7d``, ``sessions_14d``, ``sessions_30d``, and ``sessions_prev_30d``
  (30 to 60 days ago: with ``sessions_30d`` the trend of the visit rate).
- ``days_since_last_session``; ``sessions_per_30d`` over the tenure; ``missed_sessions`` = the sessions the
  person's own rate would have brought since the last one (a long silence from a frequent visitor says
  more than the same silence from a rare one).
- ``days_since_last_activity`` (visits, orders, opens, clicks, conversions) and ``days_since_last_response``
  (opens, clicks, conversions).
- per channel ``<c>_session_share``: the share of the person's sessions started on that channel (where
  they like to be).
- per outbound channel ``<c>_touches_total`` and ``<c>_open_rate_smoothed`` / ``<c>_click_rate_smoothed``
  = (responses + 1) / (touches + 2): a person's taste for a channel from few touches, without the 0/1
  extremes of a raw rate.
"""

from __future__ import annotations

import numpy as np

from features.activity import LAST_SESSIONS, ActivityHistory
from features.engineering_base import (
    DAY_NS,
    OUTBOUND_CHANNELS,
    CodedEvents,
    count,
    days_since,
    is_type,
    last_ts,
    matrix,
)
from features.schema import CHANNELS

__all__ = ["CHANNEL_RESPONSE_FEATURES", "SESSION_FEATURES", "activity_history", "channel_response_features",
           "session_features"]

SESSION_FEATURES: dict[str, str] = {
    "sessions_total": "int", "sessions_7d": "int", "sessions_14d": "int", "sessions_30d": "int",
    "sessions_prev_30d": "int", "days_since_last_session": "float", "sessions_per_30d": "float",
    "missed_sessions": "float", "days_since_last_activity": "float", "days_since_last_response": "float",
}
CHANNEL_RESPONSE_FEATURES: dict[str, str] = {
    **{f"{c}_session_share": "float" for c in CHANNELS},
    **{f"{c}_touches_total": "int" for c in OUTBOUND_CHANNELS},
    **{f"{c}_open_rate_smoothed": "float" for c in OUTBOUND_CHANNELS},
    **{f"{c}_click_rate_smoothed": "float" for c in OUTBOUND_CHANNELS},
}


def session_features(ev: CodedEvents, as_of: int, upto: np.ndarray) -> dict[str, np.ndarray]:
    """Columns of :data:`SESSION_FEATURES` for every person in ``ev``."""
    n = ev.n_persons
    starts = upto & ev.session_start
    age = as_of - ev.ts
    total = count(ev.code[starts], n)
    tenure = np.maximum((as_of - ev.first_ts) / DAY_NS, 1.0)
    since = days_since(as_of, last_ts(ev, starts))
    responses = upto & is_type(ev, "open", "click", "conversion")
    return {
        "sessions_total": total,
        **{f"sessions_{d}d": count(ev.code[starts & (age < d * DAY_NS)], n) for d in (7, 14, 30)},
        "sessions_prev_30d": count(ev.code[starts & (age >= 30 * DAY_NS) & (age < 60 * DAY_NS)], n),
        "days_since_last_session": since,
        "sessions_per_30d": total * 30.0 / tenure,
        "missed_sessions": np.where(total > 0, total / tenure * np.minimum(since, tenure), 0.0),
        "days_since_last_activity": days_since(as_of, last_ts(ev, upto & (ev.is_visit | responses))),
        "days_since_last_response": days_since(as_of, last_ts(ev, responses)),
    }


def channel_response_features(ev: CodedEvents, upto: np.ndarray) -> dict[str, np.ndarray]:
    """Columns of :data:`CHANNEL_RESPONSE_FEATURES` for every person in ``ev``."""
    sessions = matrix(ev, upto & ev.session_start, ev.channel, len(CHANNELS)).astype(float)
    total = sessions.sum(axis=1, keepdims=True)
    shares = np.divide(sessions, total, out=np.zeros_like(sessions), where=total > 0)
    out = {f"{c}_session_share": shares[:, i] for i, c in enumerate(CHANNELS)}
    k = len(OUTBOUND_CHANNELS)
    touches = matrix(ev, upto & is_type(ev, "touch"), ev.outbound, k).astype(float)
    opens = matrix(ev, upto & is_type(ev, "open"), ev.outbound, k)
    clicks = matrix(ev, upto & is_type(ev, "click"), ev.outbound, k)
    for i, c in enumerate(OUTBOUND_CHANNELS):
        out[f"{c}_touches_total"] = touches[:, i].astype(np.int64)
        out[f"{c}_open_rate_smoothed"] = (np.minimum(opens[:, i], touches[:, i]) + 1.0) / (touches[:, i] + 2.0)
        out[f"{c}_click_rate_smoothed"] = (np.minimum(clicks[:, i], touches[:, i]) + 1.0) / (touches[:, i] + 2.0)
    return out


def activity_history(ev: CodedEvents, as_of: int, upto: np.ndarray) -> ActivityHistory:
    """What the activity model (features.activity) reads per person, in days from when they were first seen."""
    n = ev.n_persons
    first = ev.first_ts
    exposure = np.maximum((as_of - first) / DAY_NS, 0.0)
    orders = upto & ev.is_order & ev.first_line_of_order
    last = last_ts(ev, orders)
    last_order = np.where(last == np.iinfo(np.int64).min, 0.0, (last - first) / DAY_NS)
    starts = np.flatnonzero(upto & ev.session_start)
    starts = starts[np.lexsort((ev.ts[starts], ev.code[starts]))]
    code = ev.code[starts]
    sessions = count(code, n)
    # rank from the end within each person: 0 = the last session
    end = np.cumsum(sessions)[code] - 1
    from_end = end - np.arange(len(starts))
    width = LAST_SESSIONS + 1
    keep = from_end < width
    recent = np.full((n, width), np.nan)
    recent[code[keep], width - 1 - from_end[keep]] = (ev.ts[starts[keep]] - first[code[keep]]) / DAY_NS
    return ActivityHistory(exposure=exposure, orders=count(ev.code[orders], n).astype(float),
                           last_order=last_order, sessions=sessions.astype(float), recent=recent)
