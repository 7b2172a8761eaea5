"""Collects event batches as arrays and renders the raw event frame (JSON strings, UTC timestamps)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simulator.catalog import CHANNELS, EVENT_TYPES, RAW_COLUMNS
from simulator.identities import Identities, distinct_ints

CH = {c: i for i, c in enumerate(CHANNELS)}
ET = {e: i for i, e in enumerate(EVENT_TYPES)}


def json_objects(pairs: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Serialise per-row JSON objects from (key, values) columns; None values are left out.

    Values are either already-rendered JSON literals (numbers, booleans) when the key starts with ``#``,
    or plain strings free of quotes and backslashes (identifiers, ids), which holds for everything here.
    """
    if not pairs:
        return np.array([], dtype=object)
    keys = []
    for k, _ in pairs:
        keys.append((k[1:], False) if k.startswith("#") else (k, True))
    cols = [v for _, v in pairs]
    out = np.empty(len(cols[0]), dtype=object)
    for i, row in enumerate(zip(*cols, strict=True)):
        parts = [f'"{k}": "{x}"' if quote else f'"{k}": {x}'
                 for (k, quote), x in zip(keys, row, strict=True) if x is not None]
        out[i] = "{" + ", ".join(parts) + "}"
    return out


def identifier_json(ids: Identities, person: np.ndarray, id_types: list[str],
                    rng: np.random.Generator, keep: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Identifiers JSON per event: raw values of ``id_types`` the person holds (optionally masked by keep)."""
    pairs = []
    for t in id_types:
        vals = ids.raw(t, person, rng)
        if keep is not None and t in keep:
            vals = np.where(keep[t], vals, None)
        pairs.append((t, vals))
    return json_objects(pairs)


@dataclass
class EventLog:
    """Append-only batches of events; ``t`` is in fractional days from the window start."""

    person: list[np.ndarray] = field(default_factory=list)
    t: list[np.ndarray] = field(default_factory=list)
    channel: list[np.ndarray] = field(default_factory=list)
    etype: list[np.ndarray] = field(default_factory=list)
    identifiers: list[np.ndarray] = field(default_factory=list)
    properties: list[np.ndarray] = field(default_factory=list)

    def add(self, person: np.ndarray, t: np.ndarray, channel: np.ndarray | int, event_type: str,
            identifiers: np.ndarray, properties: np.ndarray | None = None) -> None:
        n = len(person)
        if n == 0:
            return
        self.person.append(np.asarray(person, dtype=np.int64))
        self.t.append(np.asarray(t, dtype=float))
        self.channel.append(np.broadcast_to(np.asarray(channel, dtype=np.int64), (n,)).copy())
        self.etype.append(np.full(n, ET[event_type], dtype=np.int64))
        self.identifiers.append(np.asarray(identifiers, dtype=object))
        props = np.full(n, "{}", dtype=object) if properties is None else np.asarray(properties, dtype=object)
        self.properties.append(props)

    def to_frame(self, start: pd.Timestamp, days: int, duplicate_share: float,
                 rng: np.random.Generator) -> pd.DataFrame:
        """Raw events sorted by time, ids assigned, events after the window end cut, duplicates planted."""
        t = np.concatenate(self.t)
        keep = (t >= 0) & (t < days)
        order = np.argsort(t[keep], kind="stable")

        def cat(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts)[keep][order]

        t_sorted = t[keep][order]
        n = len(t_sorted)
        seconds = np.floor(t_sorted * 86400.0).astype(np.int64)
        ts = start + pd.to_timedelta(seconds, unit="s")
        ids = np.array([f"ev_{x:016x}" for x in distinct_ints(rng, n, 2**62)], dtype=object)
        frame = pd.DataFrame({
            "event_id": ids,
            "ts": pd.DatetimeIndex(ts).as_unit("ns"),
            "channel": np.array(CHANNELS, dtype=object)[cat(self.channel)],
            "event_type": np.array(EVENT_TYPES, dtype=object)[cat(self.etype)],
            "identifiers": cat(self.identifiers),
            "properties": cat(self.properties),
        })
        n_dup = int(round(n * duplicate_share))
        if n_dup:
            dup_rows = np.sort(rng.choice(n, n_dup, replace=False))
            frame = pd.concat([frame, frame.iloc[dup_rows]])
            frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
        return frame[list(RAW_COLUMNS)]

    def person_index(self) -> np.ndarray:
        return np.concatenate(self.person)

