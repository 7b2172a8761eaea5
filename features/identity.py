"""One-ID: resolve the identifiers of lake events into persons, fully or incrementally.

The linking itself (trust per identifier type, hub guard, eras of recycled phones, stable person ids) lives
in :mod:`features.identity_graph` under the rules of :mod:`features.identity_rules`; the evaluation
against ground truth in :mod:`features.identity_eval`. This module is the public face: resolving, attaching
person ids to events, the serving index, and the state on disk.

State in ``identity_dir``: ``identity_map.parquet`` (MAP_COLUMNS, one row per identifier, or per era of a
recycled one), ``graph_nodes.parquet`` + ``graph_edges.parquet`` (the evidence, what an incremental run
starts from) and ``merges.parquet``, the append-only log of merges and splits (ts, kind, from, to, reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.identity_eval import identity_report
from features.identity_graph import (
    MAP_COLUMNS,
    IdentityGraph,
    identifier_occurrences,
    link_persons,
)
from features.identity_rules import IdentityRules, load_identity_rules
from features.ingest import read_lake
from features.privacy import key_identifier

IDENTITY_FILE = "identity_map.parquet"
NODES_FILE = "graph_nodes.parquet"
EDGES_FILE = "graph_edges.parquet"
LOG_FILE = "merges.parquet"
LOG_COLUMNS: tuple[str, ...] = ("ts", "kind", "from", "to", "reason")

__all__ = [
    "LOG_COLUMNS", "MAP_COLUMNS", "IdentityIndex", "IdentityState", "attach_person_ids", "change_log",
    "identity_report", "load_resolved_events", "read_identity_log", "read_identity_map",
    "read_identity_state", "read_lake_events", "resolve_identities", "update_identities",
    "write_identity_map", "write_identity_state",
]


@dataclass(frozen=True)
class IdentityState:
    """What One-ID knows after a run: the evidence, the identity map, and the changes of that run."""

    graph: IdentityGraph
    map: pd.DataFrame
    changes: pd.DataFrame
    stats: dict[str, int]


def update_identities(previous: IdentityState | None, events: pd.DataFrame, *,
                      rules: IdentityRules | None = None, ts: pd.Timestamp | None = None,
                      restart: bool = False) -> IdentityState:
    """Add ``events`` to the evidence of ``previous`` (None = start empty) and relink.

    ``restart`` ignores the evidence of ``previous`` (a full recompute) but still logs changes against it.

    Person ids are a pure function of the evidence, so this equals a full resolution over all events
    ever added; ``changes`` lists the merges and splits against ``previous.map`` stamped ``ts``.
    """
    rules = rules or load_identity_rules()
    graph = (previous.graph if previous and not restart else IdentityGraph.empty()).update(events)
    linking = link_persons(graph, rules)
    old = previous.map if previous else linking.map.iloc[:0]
    stamp = pd.Timestamp.now(tz="UTC") if ts is None else pd.Timestamp(ts)
    return IdentityState(graph, linking.map, change_log(old, linking.map, stamp), linking.stats)


def resolve_identities(lake_events: pd.DataFrame, previous: IdentityState | None = None, *,
                       rules: IdentityRules | None = None) -> pd.DataFrame:
    """Identity map (MAP_COLUMNS) of ``lake_events``, added to ``previous`` when given.

    Sorted by (id_type, id_key, valid_from). ``person_id`` is None for shared (hub) identifiers.
    """
    return update_identities(previous, lake_events, rules=rules).map


def _current(identity_map: pd.DataFrame) -> pd.Series:
    """(id_type:id_key) → person of the identifier's current era, hubs left out."""
    rows = identity_map[identity_map["valid_to"].isna() & identity_map["person_id"].notna()]
    return pd.Series(rows["person_id"].to_numpy(), index=(rows["id_type"] + ":" + rows["id_key"]).to_numpy())


def change_log(old: pd.DataFrame, new: pd.DataFrame, ts: pd.Timestamp) -> pd.DataFrame:
    """Merges, splits and renames between two identity maps, one row per (from, to) person pair.

    merge: identifiers of several old persons now form one new person (``to``); split: identifiers of
    one old person now belong to several new persons; rename: one old person became one new person with
    another id (an older identifier joined it); detach: an identifier of an old person became shared and
    now names nobody. Reasons name what drove a split.
    """
    before, after = _current(old), _current(new)
    both = pd.DataFrame({"old": before, "new": after.reindex(before.index)}).dropna()
    if before.empty:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c == "ts" else object)
                             for c in LOG_COLUMNS})
    news_of_old = both.groupby("old")["new"].nunique()
    olds_of_new = both.groupby("new")["old"].nunique()
    shared = set(new.loc[new["shared"], "id_type"] + ":" + new.loc[new["shared"], "id_key"])
    split_ids = set(new.loc[new["valid_from"].notna(), "id_type"] + ":"
                     + new.loc[new["valid_from"].notna(), "id_key"])
    old_nodes = old[old["person_id"].notna()]
    old_nodes = pd.Series(old_nodes["person_id"].to_numpy(),
                          index=(old_nodes["id_type"] + ":" + old_nodes["id_key"]).to_numpy())
    rows = []
    for (o, n), _ in both.groupby(["old", "new"]):
        if news_of_old[o] > 1 and n != o:
            members = set(old_nodes.index[old_nodes.to_numpy() == o])
            reason = ("shared_identifier" if members & shared else
                      "recycled_identifier" if members & split_ids else "relinked")
            rows.append((ts, "split", o, n, reason))
        elif olds_of_new[n] > 1 and n != o:
            rows.append((ts, "merge", o, n, "co-occurrence"))
        elif n != o:
            rows.append((ts, "rename", o, n, "older identifier joined"))
    now_shared = before.index[before.index.isin(list(shared))]
    rows += [(ts, "detach", before[n], None, "shared_identifier") for n in now_shared]
    log = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    log["ts"] = pd.to_datetime(log["ts"], utc=True)
    return log


def attach_person_ids(events: pd.DataFrame, identity_map: pd.DataFrame,
                      rules: IdentityRules | None = None) -> pd.DataFrame:
    """Return ``events`` with a ``person_id`` column (None where no identifier names a person).

    An event's person comes from its most trusted identifier that has one (strong before medium before
    weak); shared identifiers name nobody, and a recycled identifier names the owner of the era the event
    falls in. Events seen only through shared identifiers (a kiosk browsed anonymously) get None.
    """
    rules = rules or load_identity_rules()
    out = events.copy()
    occ = identifier_occurrences(events)
    person = np.full(len(events), None, dtype=object)
    named = identity_map[identity_map["person_id"].notna()]
    if not occ.empty and not named.empty:
        joined = occ.merge(named, on=["id_type", "id_key"], how="inner")
        valid = ((joined["valid_from"].isna() | (joined["ts"] >= joined["valid_from"]))
                 & (joined["valid_to"].isna() | (joined["ts"] < joined["valid_to"])))
        joined = joined[valid.to_numpy()]
        joined = joined.assign(rank=joined["id_type"].map(rules.rank))
        best = joined.sort_values(["row", "rank", "node"]).drop_duplicates("row")
        person[best["row"].to_numpy()] = best["person_id"].to_numpy()
    out["person_id"] = person
    return out


class IdentityIndex:
    """O(1) lookup of a person by one keyed identifier (serving resolves ``{id_type, id}`` with it).

    A recycled identifier resolves to its current owner; a shared one to nobody.
    """

    def __init__(self, identity_map: pd.DataFrame):
        rows = identity_map
        if "valid_to" in rows.columns:
            rows = rows[rows["valid_to"].isna()]
        rows = rows[rows["person_id"].notna()]
        self._index: dict[tuple[str, str], str] = dict(
            zip(zip(rows["id_type"], rows["id_key"], strict=True), rows["person_id"], strict=True)
        )

    def __len__(self) -> int:
        return len(self._index)

    def lookup(self, id_type: str, id_key: str) -> str | None:
        return self._index.get((id_type, id_key))

    def lookup_raw(self, id_type: str, raw: object, salt: bytes) -> str | None:
        """Key a raw identifier (phone/e-mail are normalised and HMAC-keyed) and look it up."""
        key = key_identifier(id_type, raw, salt)
        return None if key is None else self.lookup(id_type, key)


# ---------------------------------------------------------------- state on disk
def read_lake_events(lake_dir: Path) -> pd.DataFrame:
    """The lake events that One-ID links (LAKE_COLUMNS, ts UTC); see :func:`features.ingest.read_lake`."""
    return read_lake(lake_dir)


def write_identity_map(identity_map: pd.DataFrame, identity_dir: Path) -> Path:
    identity_dir = Path(identity_dir)
    identity_dir.mkdir(parents=True, exist_ok=True)
    path = identity_dir / IDENTITY_FILE
    identity_map[list(MAP_COLUMNS)].to_parquet(path, index=False)
    return path


def read_identity_map(identity_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(Path(identity_dir) / IDENTITY_FILE)
    frame["person_id"] = frame["person_id"].astype(object).where(frame["person_id"].notna(), None)
    return frame[list(MAP_COLUMNS)]


def write_identity_state(state: IdentityState, identity_dir: Path) -> None:
    """Write map and evidence, and append this run's changes to ``merges.parquet``."""
    identity_dir = Path(identity_dir)
    write_identity_map(state.map, identity_dir)
    state.graph.nodes.to_parquet(identity_dir / NODES_FILE, index=False)
    state.graph.edges.to_parquet(identity_dir / EDGES_FILE, index=False)
    log_path = identity_dir / LOG_FILE
    log = state.changes
    if log_path.exists():
        log = pd.concat([pd.read_parquet(log_path), log], ignore_index=True) if len(log) else None
    if log is not None:
        log[list(LOG_COLUMNS)].to_parquet(log_path, index=False)


def read_identity_state(identity_dir: Path) -> IdentityState | None:
    """The stored state, or None when One-ID has not run (or ran before evidence was stored)."""
    identity_dir = Path(identity_dir)
    paths = [identity_dir / f for f in (IDENTITY_FILE, NODES_FILE, EDGES_FILE)]
    if not all(p.exists() for p in paths):
        return None
    graph = IdentityGraph(pd.read_parquet(paths[1]), pd.read_parquet(paths[2]))
    empty_log = pd.DataFrame(columns=list(LOG_COLUMNS))
    return IdentityState(graph, read_identity_map(identity_dir), empty_log, {})


def read_identity_log(identity_dir: Path) -> pd.DataFrame:
    path = Path(identity_dir) / LOG_FILE
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=list(LOG_COLUMNS))


def load_resolved_events(lake_dir: Path, identity_dir: Path) -> pd.DataFrame:
    """Lake events with ``person_id`` from the stored identity map (rows without a person dropped)."""
    events = attach_person_ids(read_lake(lake_dir), read_identity_map(identity_dir))
    return events[events["person_id"].notna()].reset_index(drop=True)
