"""Train the recommender: BPR matrix factorisation vs popularity and item-kNN under leave-last-out.

The evaluation helpers (:func:`leave_last_out`, :func:`ranking_metrics`) are pure and shared with
``benchmarks/recommender.py``, which runs the same protocol on MovieLens 100K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from config.settings import Settings
from models.recommender import ItemKNNRecommender, MatrixFactorizationRecommender, PopularityRecommender
from training.common import TrainResult, finish, new_figure, training_run, window_tags
from training.datasets import data_window, interactions

NAME = "recommender"
K = 10
PARAMS = {"n_factors": 32, "epochs": 15, "learning_rate": 0.02, "reg": 1e-4, "batch_size": 4096}


@dataclass(frozen=True)
class LeaveLastOut:
    """``train``: every person's interactions but the last new item; ``held_out``: {person: {that item}}."""

    train: pd.DataFrame
    held_out: dict[str, set[str]]


def leave_last_out(
    interactions: pd.DataFrame, *, person_col: str = "person_id", item_col: str = "item_id", ts_col: str = "ts",
    min_items: int = 2,
) -> LeaveLastOut:
    """Hold out each person's most recent first-time item (persons with >= ``min_items`` distinct items).

    Repeats of an item are dropped first (only its first interaction counts), so the held-out item is
    never already in the person's training history. Ties in ``ts`` keep the input order.
    """
    missing = {person_col, item_col, ts_col} - set(interactions.columns)
    if missing:
        raise ValueError(f"interactions lacks columns {sorted(missing)}")
    if min_items < 2:
        raise ValueError(f"min_items must be >= 2 (one to learn from, one to hold out), got {min_items!r}")
    frame = interactions[[person_col, item_col, ts_col]].astype({person_col: str, item_col: str})
    frame = frame.sort_values(ts_col, kind="stable").drop_duplicates([person_col, item_col], keep="first")
    frame = frame.reset_index(drop=True)
    counts = frame.groupby(person_col)[item_col].transform("size")
    rank_from_end = frame.groupby(person_col).cumcount(ascending=False)
    test_rows = (rank_from_end == 0) & (counts >= min_items)
    held = frame[test_rows]
    held_out = {str(p): {str(i)} for p, i in zip(held[person_col], held[item_col], strict=True)}
    train = frame[~test_rows].rename(columns={person_col: "person_id", item_col: "item_id", ts_col: "ts"})
    return LeaveLastOut(train=train.reset_index(drop=True), held_out=held_out)


def ranking_metrics(model, relevant: dict[str, set[str]], k: int = K) -> dict[str, float]:
    """``recall`` and ``ndcg`` at ``k``, averaged over persons (seen items excluded by ``recommend``).

    recall = |top-k ∩ relevant| / |relevant|; NDCG = sum over hits of 1/log2(rank + 1) divided by the
    ideal DCG of min(|relevant|, k) hits (Järvelin & Kekäläinen, 2002).
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k!r}")
    if not relevant:
        return {"recall": 0.0, "ndcg": 0.0}
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = [], []
    for person, items in relevant.items():
        top = [item for item, _ in model.recommend(person, k)]
        gains = np.array([item in items for item in top], dtype=np.float64)
        recalls.append(gains.sum() / len(items))
        ideal = discounts[:min(len(items), k)].sum()
        ndcgs.append(float(gains @ discounts[:len(gains)]) / ideal)
    return {"recall": float(np.mean(recalls)), "ndcg": float(np.mean(ndcgs))}


def train_recommender(settings: Settings, events: pd.DataFrame, *, seed: int = 0) -> TrainResult:
    """Leave-last-out: fit ours and both baselines without each person's latest new item, score NDCG@10
    and recall@10 on it, log; register ours refitted on every interaction (the latest items matter most)."""
    data = interactions(events)
    split = leave_last_out(data)
    if not split.held_out:
        raise ValueError("no person has 2 distinct items: cannot evaluate the recommender")
    train = split.train
    candidates = {
        "bpr-mf": MatrixFactorizationRecommender(**PARAMS, seed=seed),
        "popularity": PopularityRecommender(),
        "item-knn": ItemKNNRecommender(),
    }
    scores = {label: ranking_metrics(m.fit(train["person_id"], train["item_id"]), split.held_out, K)
              for label, m in candidates.items()}
    value, base_value = scores["bpr-mf"]["ndcg"], scores["popularity"]["ndcg"]
    fig = new_figure((6, 4))
    ax = fig.subplots()
    width = 0.25
    for n, (label, metrics) in enumerate(scores.items()):
        ax.bar(np.arange(2) + (n - 1) * width, [metrics["recall"], metrics["ndcg"]], width, label=label)
    ax.set_xticks(range(2), [f"recall@{K}", f"NDCG@{K}"])
    ax.set(title="leave-last-out: each person's latest new item")
    ax.legend()
    fig.tight_layout()
    model = MatrixFactorizationRecommender(**PARAMS, seed=seed).fit(data["person_id"], data["item_id"])
    known = next(iter(split.held_out))
    example = pd.DataFrame({"person_id": [known, "unknown-person"], "k": [K, 3]})
    extra = {f"{'' if label == 'bpr-mf' else label.replace('-', '') + '_'}{name}_at_{K}": v
             for label, metrics in scores.items() for name, v in metrics.items()}
    extra.pop(f"ndcg_at_{K}")
    with training_run(settings, NAME) as run:
        return finish(
            name=NAME, run=run, predictor=model, input_example=example,
            metric=f"ndcg_at_{K}", value=value, baseline_value=base_value,
            feature_names=["person_id", "item_id"], feature_service="lake:interactions",
            window=window_tags(*data_window(events)),
            params={**PARAMS, "seed": seed, "n_interactions": len(data), "n_test_persons": len(split.held_out),
                    "n_items": len(model.item_ids_), "split": "leave-last-out", "baseline": "popularity"},
            figure=fig, extra_metrics=extra,
        )
