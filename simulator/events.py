"""Collects event batches as columns and renders them: a columnar event table, or the canonical raw frame.

Identifiers and properties are kept as one column per key (None where absent) so that large worlds never
build a JSON string per event; only :func:`raw_frame` (small, in-memory worlds) serialises JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simulator.catalog import CHANNELS, EVENT_TYPES, ID_TYPES, RAW_COLUMNS

CH = {c: i for i, c in enumerate(CHANNELS)}
ET = {e: i for i, e in enumerate(EVENT_TYPES)}
# properties an event may carry; '#' marks values rendered as JSON literals (numbers, booleans)
PROPERTY_KEYS: tuple[str, ...] = (
    "order_id", "item_id", "category", "#amount", "touch_id", "action_id", "#logging_propensity",
    "consent_channel", "purpose", "#granted",
)
PROPS: tuple[str, ...] = tuple(k.lstrip("#") for k in PROPERTY_KEYS)
_LITERAL = {k.lstrip("#") for k in PROPERTY_KEYS if k.startswith("#")}

Columns = dict[str, np.ndarray]


def take(columns: Columns, rows: np.ndarray) -> Columns:
    """Row subset of a column dict (boolean mask or index array)."""
    return {k: v[rows] for k, v in columns.items()}


def id_columns(ids, person: np.ndarray, id_types: list[str], rng: np.random.Generator,
               keep: dict[str, np.ndarray] | None = None) -> Columns:
    """Raw values of ``id_types`` the persons hold (None where absent or masked out by ``keep``)."""
    out = {}
    for t in id_types:
        vals = ids.raw(t, person, rng)
        if keep is not None and t in keep:
            vals = np.where(keep[t], vals, None)
        out[t] = vals
    return out


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A bijection of uint64 (so distinct inputs give distinct, well-mixed outputs)."""
    with np.errstate(over="ignore"):
        z = (np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hex16(x: np.ndarray) -> np.ndarray:
    """uint64 → 16 lower-case hex digits per value, without a Python loop."""
    be = np.asarray(x, dtype=">u8").tobytes().hex()
    return np.frombuffer(be.encode("ascii"), dtype="S16").astype(str).astype(object)


@dataclass
class EventLog:
    """Append-only batches of events; ``t`` is in fractional days from the window start."""

    batches: list[dict] = field(default_factory=list)

    def add(self, person: np.ndarray, t: np.ndarray, channel: np.ndarray | int, event_type: str,
            identifiers: Columns, properties: Columns | None = None) -> None:
        n = len(person)
        if n == 0:
            return
        self.batches.append({
            "person": np.asarray(person, dtype=np.int64), "t": np.asarray(t, dtype=float),
            "channel": np.broadcast_to(np.asarray(channel, dtype=np.int64), (n,)).copy(),
            "etype": np.full(n, ET[event_type], dtype=np.int64),
            **{f"id_{k}": np.asarray(v, dtype=object) for k, v in identifiers.items()},
            **{f"p_{k}": np.asarray(v, dtype=object) for k, v in (properties or {}).items()},
        })

    def table(self, days: int) -> pd.DataFrame:
        """All events in the window [0, days) as columns, sorted by time.

        Columns: person, t, channel, etype (ints), ``id_<type>`` per identifier type and ``p_<key>`` per
        property (object, None where absent).
        """
        cols = ["person", "t", "channel", "etype", *[f"id_{t}" for t in ID_TYPES], *[f"p_{k}" for k in PROPS]]
        parts = {}
        total = sum(len(b["person"]) for b in self.batches)
        for c in cols:
            if c in ("person", "t", "channel", "etype"):
                parts[c] = np.concatenate([b[c] for b in self.batches]) if self.batches else np.empty(0)
            else:
                out = np.full(total, None, dtype=object)
                pos = 0
                for b in self.batches:
                    n = len(b["person"])
                    if c in b:
                        out[pos:pos + n] = b[c]
                    pos += n
                parts[c] = out
        frame = pd.DataFrame(parts)
        frame = frame[(frame["t"] >= 0) & (frame["t"] < days)]
        return frame.sort_values("t", kind="stable").reset_index(drop=True)


def raw_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The canonical raw feed (RAW_COLUMNS, identifiers/properties as JSON text) of an event table."""
    ids = [table[f"id_{t}"].to_numpy() for t in ID_TYPES]
    props = [table[f"p_{k}"].to_numpy() for k in PROPS]
    id_json = np.empty(len(table), dtype=object)
    prop_json = np.empty(len(table), dtype=object)
    for i in range(len(table)):
        id_json[i] = "{" + ", ".join(f'"{t}": "{col[i]}"' for t, col in zip(ID_TYPES, ids, strict=True)
                                     if col[i] is not None) + "}"
        prop_json[i] = "{" + ", ".join(
            f'"{k}": {col[i]}' if k in _LITERAL else f'"{k}": "{col[i]}"'
            for k, col in zip(PROPS, props, strict=True) if col[i] is not None) + "}"
    return pd.DataFrame({
        "event_id": table["event_id"].to_numpy(),
        "ts": pd.DatetimeIndex(table["ts"]).as_unit("ns"),
        "channel": np.array(CHANNELS, dtype=object)[table["channel"].to_numpy()],
        "event_type": np.array(EVENT_TYPES, dtype=object)[table["etype"].to_numpy()],
        "identifiers": id_json,
        "properties": prop_json,
    })[list(RAW_COLUMNS)]
