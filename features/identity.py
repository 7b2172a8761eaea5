"""One-ID, first version: identifiers seen together in one event belong to one person.

The identity graph has one node per keyed identifier (``type:key``) and an edge between identifiers that
co-occur in an event (a login binds a device to a member, a WeChat bind links openid, unionid and phone).
Connected components are persons. A person's id is derived from the smallest node of its component, so
it is stable across reruns and input order; when two components merge, the merged person keeps the id of
the component holding the smaller node.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from features.ingest import read_lake
from features.privacy import key_identifier

IDENTITY_FILE = "identity_map.parquet"
MAP_COLUMNS: tuple[str, ...] = ("id_type", "id_key", "person_id")


def _person_id(node: str) -> str:
    return "P" + hashlib.sha1(node.encode("utf-8")).hexdigest()[:12]


def _identifier_pairs(events: pd.DataFrame) -> pd.DataFrame:
    """Long table (row, id_type, id_key) of the keyed identifiers of each event."""
    cache: dict[str, dict] = {}
    rows: list[int] = []
    types: list[str] = []
    keys: list[str] = []
    for i, text in enumerate(events["identifiers"].to_numpy()):
        if not isinstance(text, str):
            continue
        parsed = cache.get(text)
        if parsed is None:
            parsed = cache[text] = json.loads(text)
        for id_type, id_key in parsed.items():
            rows.append(i)
            types.append(id_type)
            keys.append(str(id_key))
    return pd.DataFrame({"row": np.asarray(rows, dtype=np.int64), "id_type": types, "id_key": keys})


def resolve_identities(lake_events: pd.DataFrame) -> pd.DataFrame:
    """Union identifiers that co-occur in one event → identity map (id_type, id_key, person_id).

    Sorted by (id_type, id_key); person_id is ``"P" + sha1(smallest "type:key" of the component)[:12]``.
    """
    pairs = _identifier_pairs(lake_events)
    if pairs.empty:
        return pd.DataFrame({col: pd.Series(dtype=object) for col in MAP_COLUMNS})
    node = pairs["id_type"] + ":" + pairs["id_key"]
    codes, uniques = pd.factorize(node)
    first_of_row = pd.Series(codes).groupby(pairs["row"].to_numpy()).transform("first").to_numpy()
    n = len(uniques)
    graph = coo_matrix((np.ones(len(codes), dtype=np.int8), (codes, first_of_row)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    nodes = pd.DataFrame({"node": np.asarray(uniques, dtype=object), "component": component})
    smallest = nodes.groupby("component")["node"].min()
    person = smallest.map(_person_id)
    nodes["person_id"] = person.reindex(nodes["component"]).to_numpy()
    split = nodes["node"].str.split(":", n=1, expand=True)
    identity = pd.DataFrame({"id_type": split[0], "id_key": split[1], "person_id": nodes["person_id"]})
    return identity.sort_values(["id_type", "id_key"]).reset_index(drop=True)


def attach_person_ids(events: pd.DataFrame, identity_map: pd.DataFrame) -> pd.DataFrame:
    """Return ``events`` with a ``person_id`` column (None where no identifier is in the map).

    Any identifier of an event gives its person: after :func:`resolve_identities` on the same events all
    identifiers of one event map to the same person.
    """
    out = events.copy()
    pairs = _identifier_pairs(events)
    if pairs.empty:
        out["person_id"] = None
        return out
    lookup = identity_map.set_index(["id_type", "id_key"])["person_id"]
    index = pd.MultiIndex.from_arrays([pairs["id_type"], pairs["id_key"]])
    pairs["person_id"] = lookup.reindex(index).to_numpy()
    per_row = pairs.dropna(subset=["person_id"]).groupby("row")["person_id"].first()
    person = np.full(len(events), None, dtype=object)
    person[per_row.index.to_numpy()] = per_row.to_numpy()
    out["person_id"] = person
    return out


class IdentityIndex:
    """O(1) lookup of a person by one keyed identifier (serving resolves ``{id_type, id}`` with it)."""

    def __init__(self, identity_map: pd.DataFrame):
        self._index: dict[tuple[str, str], str] = dict(
            zip(zip(identity_map["id_type"], identity_map["id_key"], strict=True),
                identity_map["person_id"], strict=True)
        )

    def __len__(self) -> int:
        return len(self._index)

    def lookup(self, id_type: str, id_key: str) -> str | None:
        return self._index.get((id_type, id_key))

    def lookup_raw(self, id_type: str, raw: object, salt: bytes) -> str | None:
        """Key a raw identifier (phone/e-mail are normalised and HMAC-keyed) and look it up."""
        key = key_identifier(id_type, raw, salt)
        return None if key is None else self.lookup(id_type, key)


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
    return pd.read_parquet(Path(identity_dir) / IDENTITY_FILE)[list(MAP_COLUMNS)]


def load_resolved_events(lake_dir: Path, identity_dir: Path) -> pd.DataFrame:
    """Lake events with ``person_id`` from the stored identity map (rows without a person dropped)."""
    events = attach_person_ids(read_lake(lake_dir), read_identity_map(identity_dir))
    return events[events["person_id"].notna()].reset_index(drop=True)


def _pairs(sizes: pd.Series) -> int:
    sizes = sizes.to_numpy(dtype=np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def identity_report(identity_map: pd.DataFrame, truth_identifiers: pd.DataFrame, salt: bytes,
                    truth_person_col: str = "person_key", truth_value_col: str = "id_value") -> dict:
    """Pairwise precision/recall of "same person" over identifiers found in both map and truth.

    ``truth_identifiers`` has ``id_type``, raw canonical values in ``truth_value_col`` and the true person
    in ``truth_person_col``; values are keyed with :func:`key_identifier` before matching. Evaluation only.
    """
    truth = truth_identifiers[["id_type", truth_value_col, truth_person_col]].copy()
    truth["id_key"] = [key_identifier(t, v, salt) for t, v in zip(truth["id_type"], truth[truth_value_col],
                                                                  strict=True)]
    truth = truth.dropna(subset=["id_key"]).drop_duplicates(["id_type", "id_key"])
    joined = identity_map.merge(truth, on=["id_type", "id_key"], how="inner")
    predicted_pairs = _pairs(joined.groupby("person_id").size())
    true_pairs = _pairs(joined.groupby(truth_person_col).size())
    both = _pairs(joined.groupby(["person_id", truth_person_col]).size())
    return {
        "identifiers_matched": int(len(joined)),
        "identifiers_in_truth": int(len(truth)),
        "persons_predicted": int(joined["person_id"].nunique()),
        "persons_true": int(joined[truth_person_col].nunique()),
        "pair_precision": both / predicted_pairs if predicted_pairs else 1.0,
        "pair_recall": both / true_pairs if true_pairs else 1.0,
    }
