"""How well One-ID did, measured against the simulator's ground truth (evaluation only).

The product's pipelines never read truth; ``nba identity report`` and the tests do.

**Units.** One unit per row of the identity map (an identifier, or one era of a recycled one) whose
identifier is in the truth and belongs there to exactly one true person. Identifiers that truth gives to
several persons (a family tablet, a store kiosk, a recycled phone, or any row flagged ``shared`` in truth)
have no single right answer and are left out of the pairs; over-merging through them still shows, as
wrongly joined pairs of the other identifiers. Identifiers that truth lists but the lake never saw are left
out too: no resolver can place what it never saw. A unit the map marks shared (hub, no person) counts as
a person of its own.

**Pairs.** Over the units, a pair is predicted "same person" when both units have the same ``person_id``,
and truly "same person" when truth gives both the same person. precision = |pred ∩ true| / |pred|,
recall = |pred ∩ true| / |true| (1.0 when the denominator is 0).

**Persons.** over_merged_persons: resolved persons whose units belong to more than one true person.
under_merged_persons: true persons whose units are spread over more than one resolved person.

**Linkable recall** (when the evidence graph is given): the true pairs that the lake links at all, i.e.
connected through events that hold only that person's identifiers; ``recall_ceiling`` is their share of
all true pairs, the best any deterministic linker could reach on this lake.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from features.identity_graph import IdentityGraph
from features.privacy import key_identifier

__all__ = ["identity_report"]


def _pairs(labels: list[pd.Series] | pd.Series) -> int:
    frame = pd.concat(labels, axis=1) if isinstance(labels, list) else labels.to_frame()
    sizes = frame.groupby(list(frame.columns), sort=False).size().to_numpy(dtype=np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def _keyed_truth(truth: pd.DataFrame, salt: bytes, person_col: str, value_col: str) -> pd.DataFrame:
    values = truth[value_col].to_numpy(dtype=object)
    keys = [key_identifier(t, v, salt) for t, v in zip(truth["id_type"], values, strict=True)]
    out = pd.DataFrame({"id_type": truth["id_type"].to_numpy(), "id_key": keys,
                        "true_person": truth[person_col].astype(str).to_numpy()})
    out["flagged"] = truth["shared"].fillna(False).astype(bool).to_numpy() if "shared" in truth else False
    return out.dropna(subset=["id_key"])


def _linkable(units: pd.DataFrame, graph: IdentityGraph) -> pd.Series:
    """Component label per unit in the evidence restricted to edges inside one true person."""
    node = (units["id_type"] + ":" + units["id_key"]).to_numpy()
    owner = pd.Series(units["true_person"].to_numpy(), index=node)
    owner = owner[~owner.index.duplicated()]
    edges = graph.edges
    same = owner.reindex(edges["a"]).to_numpy() == owner.reindex(edges["b"]).to_numpy()
    same &= owner.reindex(edges["a"]).notna().to_numpy()
    index = pd.Index(owner.index)
    a, b = index.get_indexer(edges["a"][same]), index.get_indexer(edges["b"][same])
    n = len(index)
    comp = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)[1]
    return pd.Series(comp[index.get_indexer(node)], index=units.index)


def identity_report(identity_map: pd.DataFrame, truth_identifiers: pd.DataFrame, salt: bytes,
                    truth_person_col: str = "person_key", truth_value_col: str = "id_value",
                    graph: IdentityGraph | None = None) -> dict:
    """Pairwise precision/recall of "same person" and over/under-merge counts (see the module docstring).

    ``truth_identifiers`` has ``id_type``, raw canonical values in ``truth_value_col``, the true person in
    ``truth_person_col`` and optionally a boolean ``shared``; values are keyed with :func:`key_identifier`.
    """
    truth = _keyed_truth(truth_identifiers, salt, truth_person_col, truth_value_col)
    owners = truth.groupby(["id_type", "id_key"]).agg(n=("true_person", "nunique"), flagged=("flagged", "any"),
                                                      true_person=("true_person", "first"))
    ambiguous = owners[(owners["n"] > 1) | owners["flagged"]]
    single = owners.drop(ambiguous.index)[["true_person"]].reset_index()
    units = identity_map.merge(single, on=["id_type", "id_key"], how="inner").reset_index(drop=True)
    hub = units["person_id"].isna()
    predicted = units["person_id"].astype(object).where(~hub, "hub:" + units["id_type"] + ":" + units["id_key"])
    true = units["true_person"]
    pred_pairs, true_pairs, both = _pairs(predicted), _pairs(true), _pairs([predicted, true])
    report = {
        "precision": both / pred_pairs if pred_pairs else 1.0,
        "recall": both / true_pairs if true_pairs else 1.0,
        "pairs_predicted": pred_pairs, "pairs_true": true_pairs, "pairs_correct": both,
        "identifiers_evaluated": int(len(units)),
        "identifiers_in_truth": int(len(owners)),
        "identifiers_shared_in_truth": int(len(ambiguous)),
        "identifiers_shared_predicted": int(identity_map["shared"].sum()) if "shared" in identity_map else 0,
        "persons_predicted": int(predicted.nunique()),
        "persons_true": int(true.nunique()),
        "over_merged_persons": int((true.groupby(predicted).nunique() > 1).sum()),
        "under_merged_persons": int((predicted.groupby(true).nunique() > 1).sum()),
    }
    if graph is not None and len(units):
        linkable = _linkable(units, graph)
        link_pairs = _pairs([true, linkable])
        found = _pairs([predicted, true, linkable])
        report["recall_linkable"] = found / link_pairs if link_pairs else 1.0
        report["recall_ceiling"] = link_pairs / true_pairs if true_pairs else 1.0
    report["pair_precision"], report["pair_recall"] = report["precision"], report["recall"]
    return report
