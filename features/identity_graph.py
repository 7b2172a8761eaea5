"""The identity graph: link evidence aggregated from events, and the rules that turn it into persons.

Evidence (:class:`IdentityGraph`) is one row per identifier (``node`` = ``"type:key"``, first/last seen) and
one row per pair of identifiers seen together in an event (first/last time seen together). Aggregation is
min/max only, so adding events is associative, commutative and idempotent: updating yesterday's graph with
today's events gives exactly the graph of all events, and feeding an event twice changes nothing. That is
what makes incremental and full resolution agree.

:func:`link_persons` applies :class:`~features.identity_rules.IdentityRules` to the evidence:

1. **Recycled identifiers** (``time_split_types``, phones). A phone seen with two different values of a
   unique type (two member ids) is either recycled or shared. If its owners follow one another in time
   (every partner of owner k was last seen with the phone before any partner of owner k+1 was first seen),
   the phone is split into eras, ``node@<valid_from>``. The boundary between two eras lies in the window
   between the owners' partners: at the largest gap between partner sightings that no partner straddles.
   Partners of other types join the era in which all their sightings with the phone fall; a partner that
   straddles a boundary joins no era. Owners that overlap in time make the phone a hub (step 2).
2. **Hub guard for strong identifiers.** A strong identifier seen with more than ``max_persons["strong"]``
   values of one unique type (and not split into eras) links nobody.
3. **Strong persons**: connected components of the strong identifiers over the links the rules allow.
4. **Hub guard for medium/weak identifiers**: one seen with strong identifiers of more than
   ``max_persons[level]`` strong persons (a family tablet, a store kiosk, an assistant's terminal) links
   nobody; otherwise it joins its strong person.
5. **Persons** are the connected components of all allowed links between non-hub identifiers.

A person's id is ``"P" + sha1(node)[:12]`` of its earliest strong identifier (by first sighting, then
name), or its earliest identifier when it has no strong one. It is a pure function of the evidence, so
reruns and incremental updates agree, and when two persons merge the surviving id is the older one.
Hub identifiers stay in the map with ``shared=True`` and no person.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from features.identity_rules import IdentityRules

NODE_COLUMNS: tuple[str, ...] = ("node", "id_type", "id_key", "first_ts", "last_ts")
EDGE_COLUMNS: tuple[str, ...] = ("a", "b", "first_ts", "last_ts")
MAP_COLUMNS: tuple[str, ...] = ("id_type", "id_key", "person_id", "shared", "valid_from", "valid_to")
_TS = "datetime64[ns, UTC]"

__all__ = [
    "EDGE_COLUMNS", "MAP_COLUMNS", "NODE_COLUMNS", "IdentityGraph", "Linking", "identifier_occurrences",
    "link_persons", "person_id_of",
]


def person_id_of(node: str) -> str:
    return "P" + hashlib.sha1(node.encode("utf-8")).hexdigest()[:12]


def identifier_occurrences(events: pd.DataFrame) -> pd.DataFrame:
    """Long table (row, ts, id_type, id_key, node): one row per keyed identifier of each event."""
    cache: dict[str, list[tuple[str, str]]] = {}
    rows: list[int] = []
    types: list[str] = []
    keys: list[str] = []
    for i, text in enumerate(events["identifiers"].to_numpy()):
        if not isinstance(text, str):
            continue
        parsed = cache.get(text)
        if parsed is None:
            parsed = cache[text] = [(t, str(k)) for t, k in json.loads(text).items() if k is not None]
        for id_type, id_key in parsed:
            rows.append(i)
            types.append(id_type)
            keys.append(id_key)
    row = np.asarray(rows, dtype=np.int64)
    ts = pd.to_datetime(events["ts"], utc=True).astype(_TS).reset_index(drop=True)
    out = pd.DataFrame({"row": row, "ts": ts.iloc[row].reset_index(drop=True),
                        "id_type": pd.Series(types, dtype=object), "id_key": pd.Series(keys, dtype=object)})
    out["node"] = out["id_type"] + ":" + out["id_key"]
    return out


def _empty(columns: tuple[str, ...], ts_columns: tuple[str, ...] = ("first_ts", "last_ts")) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=_TS if c in ts_columns else object) for c in columns})


@dataclass(frozen=True)
class IdentityGraph:
    """Aggregated link evidence: ``nodes`` (NODE_COLUMNS) and undirected ``edges`` (EDGE_COLUMNS, a < b)."""

    nodes: pd.DataFrame
    edges: pd.DataFrame

    @classmethod
    def empty(cls) -> IdentityGraph:
        return cls(_empty(NODE_COLUMNS), _empty(EDGE_COLUMNS))

    @classmethod
    def from_events(cls, events: pd.DataFrame) -> IdentityGraph:
        occ = identifier_occurrences(events)
        if occ.empty:
            return cls.empty()
        nodes = (occ.groupby("node", sort=True)
                 .agg(id_type=("id_type", "first"), id_key=("id_key", "first"),
                      first_ts=("ts", "min"), last_ts=("ts", "max")).reset_index())
        multi = occ[occ["row"].duplicated(keep=False)][["row", "ts", "node"]]
        pairs = multi.merge(multi[["row", "node"]], on="row", suffixes=("_a", "_b"))
        pairs = pairs[pairs["node_a"] < pairs["node_b"]]
        edges = (pairs.groupby(["node_a", "node_b"], sort=True)["ts"].agg(["min", "max"]).reset_index()
                 .set_axis(list(EDGE_COLUMNS), axis=1))
        return cls(nodes[list(NODE_COLUMNS)], edges)

    def merge(self, other: IdentityGraph) -> IdentityGraph:
        """The evidence of both graphs (min of first sightings, max of last sightings)."""
        nodes = pd.concat([self.nodes, other.nodes], ignore_index=True)
        nodes = (nodes.groupby("node", sort=True)
                 .agg(id_type=("id_type", "first"), id_key=("id_key", "first"),
                      first_ts=("first_ts", "min"), last_ts=("last_ts", "max")).reset_index())
        edges = pd.concat([self.edges, other.edges], ignore_index=True)
        edges = (edges.groupby(["a", "b"], sort=True)
                 .agg(first_ts=("first_ts", "min"), last_ts=("last_ts", "max")).reset_index())
        if nodes.empty:
            return IdentityGraph.empty()
        return IdentityGraph(nodes[list(NODE_COLUMNS)], edges[list(EDGE_COLUMNS)])

    def update(self, events: pd.DataFrame) -> IdentityGraph:
        return self.merge(IdentityGraph.from_events(events))


@dataclass(frozen=True)
class Linking:
    """Result of :func:`link_persons`: the identity map (MAP_COLUMNS) and counts of what the rules did."""

    map: pd.DataFrame
    stats: dict[str, int]


# ---------------------------------------------------------------- eras of recycled identifiers
def _boundary(left: pd.Timestamp, right: pd.Timestamp, others: pd.DataFrame) -> pd.Timestamp:
    """Start of the next era: the end of the largest gap in (left, right] that the fewest partners straddle."""
    inside = pd.concat([others["first_ts"], others["last_ts"]])
    times = sorted({left, right, *inside[(inside > left) & (inside < right)]})
    best = None
    for lo, hi in zip(times[:-1], times[1:], strict=True):
        cover = int(((others["first_ts"] <= lo) & (others["last_ts"] >= hi)).sum())
        key = (cover, -(hi - lo).value, hi)
        if best is None or key < best[0]:
            best = (key, hi)
    return right if best is None else best[1]


def _eras(partners: pd.DataFrame, unique_types: tuple[str, ...]) -> list[pd.Timestamp] | None:
    """Era start times (after the first era) of one time-split identifier, or None when owners overlap."""
    anchors = partners[partners["type_y"].isin(unique_types)].sort_values(["first_ts", "y"])
    owners: list[list[int]] = [[]]
    held: dict[str, str] = {}
    for i, (y, t) in enumerate(zip(anchors["y"], anchors["type_y"], strict=True)):
        if t in held and held[t] != y:
            owners.append([])
            held = {}
        held[t] = y
        owners[-1].append(i)
    starts: list[pd.Timestamp] = []
    others = partners[~partners["type_y"].isin(unique_types)]
    for prev, nxt in zip(owners[:-1], owners[1:], strict=True):
        left = anchors["last_ts"].iloc[prev].max()
        right = anchors["first_ts"].iloc[nxt].min()
        if not left < right:
            return None
        starts.append(_boundary(left, right, others))
    return starts


# ---------------------------------------------------------------- linking
def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def link_persons(graph: IdentityGraph, rules: IdentityRules) -> Linking:
    """Apply the linking rules (module docstring) to the evidence → identity map and counts."""
    nodes = graph.nodes.set_index("node")
    if nodes.empty:
        empty = _empty(MAP_COLUMNS, ("valid_from", "valid_to"))
        return Linking(empty, {"identifiers": 0, "persons": 0, "shared": 0, "split": 0, "eras": 0})
    trust = nodes["id_type"].map(rules.trust)
    edges = graph.edges
    both = pd.DataFrame({
        "x": np.concatenate([edges["a"].to_numpy(), edges["b"].to_numpy()]),
        "y": np.concatenate([edges["b"].to_numpy(), edges["a"].to_numpy()]),
        "first_ts": pd.concat([edges["first_ts"], edges["first_ts"]], ignore_index=True),
        "last_ts": pd.concat([edges["last_ts"], edges["last_ts"]], ignore_index=True),
    })
    both["type_x"] = nodes["id_type"].reindex(both["x"]).to_numpy()
    both["type_y"] = nodes["id_type"].reindex(both["y"]).to_numpy()

    # 1-2: strong identifiers seen with several values of a unique type: eras or hubs
    strong_x = trust.reindex(both["x"]).to_numpy() == "strong"
    uniq = both[strong_x & both["type_y"].isin(rules.unique_types) & (both["type_y"] != both["type_x"])]
    per_type = uniq.groupby(["x", "type_y"])["y"].nunique()
    conflicted = set(per_type[per_type > rules.max_persons["strong"]].index.get_level_values("x"))
    hubs: set[str] = set()
    eras: dict[str, list[pd.Timestamp]] = {}
    splittable = both[both["x"].isin(conflicted) & both["type_x"].isin(rules.time_split_types)]
    for x, partners in splittable.groupby("x", sort=True):
        starts = _eras(partners, rules.unique_types)
        if starts is None:
            hubs.add(x)
        else:
            eras[x] = starts
    hubs |= conflicted - set(eras)

    # rewrite edges touching an era'd identifier onto the era their sightings fall in
    def era_node(x: str, k: int) -> str:
        return x if k == 0 else f"{x}@{eras[x][k - 1].isoformat()}"

    ea, eb = edges["a"].to_numpy(dtype=object).copy(), edges["b"].to_numpy(dtype=object).copy()
    keep = np.ones(len(edges), dtype=bool)
    if eras:
        first, last = edges["first_ts"], edges["last_ts"]
        for col in (ea, eb):
            for i in np.flatnonzero(pd.Series(col).isin(list(eras)).to_numpy()):
                starts = eras[col[i]]
                k_first = sum(s <= first.iloc[i] for s in starts)
                k_last = sum(s <= last.iloc[i] for s in starts)
                keep[i] &= k_first == k_last
                col[i] = era_node(col[i], k_first)
    era_rows = [(era_node(x, k), x, k) for x, starts in eras.items() for k in range(len(starts) + 1)]
    universe = pd.Index([n for n in nodes.index if n not in eras] + [r[0] for r in era_rows])
    base = universe.to_numpy(dtype=object).copy()
    era_k = np.zeros(len(universe), dtype=np.int64)
    era_pos = universe.get_indexer([r[0] for r in era_rows])
    base[era_pos] = [r[1] for r in era_rows]
    era_k[era_pos] = [r[2] for r in era_rows]
    node_type = nodes["id_type"].reindex(base).to_numpy(dtype=object)
    node_trust = pd.Series(node_type).map(rules.trust).to_numpy(dtype=object)
    a = universe.get_indexer(ea[keep])
    b = universe.get_indexer(eb[keep])
    pairs_ok = {f"{s}|{t}" for s in rules.trust for t in rules.trust if rules.may_link(s, t)}
    allowed = (pd.Series(node_type[a]) + "|" + pd.Series(node_type[b])).isin(pairs_ok).to_numpy()
    is_hub = np.zeros(len(universe), dtype=bool)
    is_hub[universe.get_indexer(list(hubs))] = True
    a, b = a[allowed], b[allowed]
    a, b = a[~is_hub[a] & ~is_hub[b]], b[~is_hub[a] & ~is_hub[b]]

    # 3: strong persons
    strong = node_trust == "strong"
    ss = strong[a] & strong[b]
    strong_comp = _components(len(universe), a[ss], b[ss])

    # 4: medium/weak identifiers seen with too many strong persons
    x = np.concatenate([a, b])
    y = np.concatenate([b, a])
    weak_to_strong = ~strong[x] & strong[y]
    seen = pd.DataFrame({"x": x[weak_to_strong], "c": strong_comp[y[weak_to_strong]]})
    n_persons = seen.groupby("x")["c"].nunique()
    limit = np.array([rules.max_persons[node_trust[i]] for i in n_persons.index], dtype=np.int64)
    weak_hubs = n_persons.index.to_numpy()[n_persons.to_numpy() > limit]
    is_hub[weak_hubs] = True
    ok = ~is_hub[a] & ~is_hub[b]

    # 5: persons
    comp = _components(len(universe), a[ok], b[ok])
    first_seen = nodes["first_ts"].reindex(base).reset_index(drop=True)
    for pos, (_, x_base, k) in zip(era_pos, era_rows, strict=True):
        if k > 0:
            first_seen.iloc[pos] = eras[x_base][k - 1]
    order = pd.DataFrame({"node": universe.to_numpy(dtype=object), "comp": comp, "weak": ~strong,
                          "first": first_seen.to_numpy()})
    order = order.sort_values(["weak", "first", "node"])
    survivor = order.groupby("comp", sort=False)["node"].first()
    person = survivor.reindex(comp).map(person_id_of).to_numpy(dtype=object)
    person[is_hub] = None

    valid_from = pd.Series(pd.NaT, index=range(len(universe)), dtype=_TS)
    valid_to = valid_from.copy()
    for pos, (_, x_base, k) in zip(era_pos, era_rows, strict=True):
        starts = eras[x_base]
        if k > 0:
            valid_from.iloc[pos] = starts[k - 1]
        if k < len(starts):
            valid_to.iloc[pos] = starts[k]
    keys = nodes["id_key"].reindex(base).to_numpy(dtype=object)
    identity = pd.DataFrame({
        "id_type": node_type, "id_key": keys, "person_id": person, "shared": is_hub,
        "valid_from": valid_from, "valid_to": valid_to,
    })
    identity = identity.sort_values(["id_type", "id_key", "valid_from"], na_position="first")
    stats = {
        "identifiers": int(len(nodes)), "persons": int(pd.Series(person).dropna().nunique()),
        "shared": int(is_hub.sum()), "split": len(eras), "eras": len(era_rows),
    }
    return Linking(identity.reset_index(drop=True)[list(MAP_COLUMNS)], stats)
