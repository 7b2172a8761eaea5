"""Train the recommender: BPR matrix factorisation vs popularity, recall@k on later interactions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from config.settings import Settings
from models.recommender import MatrixFactorizationRecommender, PopularityRecommender
from training.common import TrainResult, finish, new_figure, training_run, window_tags
from training.datasets import data_window, interactions
from training.splits import interaction_split

NAME = "recommender"
K = 10
KS = (1, 5, 10, 20)
PARAMS = {"n_factors": 32, "epochs": 15, "learning_rate": 0.02, "reg": 1e-4, "batch_size": 4096}


def recall_at_k(model, relevant: dict[str, set[str]], k: int) -> float:
    """Mean over persons of |top-k ∩ held-out items| / |held-out items| (seen items excluded)."""
    if not relevant:
        return 0.0
    hits = [len({i for i, _ in model.recommend(p, k)} & items) / len(items) for p, items in relevant.items()]
    return float(np.mean(hits))


def train_recommender(settings: Settings, events: pd.DataFrame, *, seed: int = 0) -> TrainResult:
    """Split interactions by time, fit both recommenders on the past, score recall@10, log and register."""
    data = interactions(events)
    train, relevant, cutoff = interaction_split(data, test_fraction=0.2)
    model = MatrixFactorizationRecommender(**PARAMS, seed=seed).fit(train["person_id"], train["item_id"])
    baseline = PopularityRecommender().fit(train["person_id"], train["item_id"])
    curves = {label: [recall_at_k(m, relevant, k) for k in KS] for label, m in (("bpr-mf", model),
                                                                                ("popularity", baseline))}
    value, base_value = curves["bpr-mf"][KS.index(K)], curves["popularity"][KS.index(K)]
    fig = new_figure((5, 4))
    ax = fig.subplots()
    for label, values in curves.items():
        ax.plot(KS, values, marker="o", label=label)
    ax.set(xlabel="k", ylabel="recall@k", title="held-out later interactions")
    ax.legend()
    fig.tight_layout()
    known = next(iter(relevant), str(train["person_id"].iloc[0]))
    example = pd.DataFrame({"person_id": [known, "unknown-person"], "k": [K, 3]})
    extra = {f"recall_at_{k}": v for k, v in zip(KS, curves["bpr-mf"], strict=True)}
    extra.update({f"baseline_recall_at_{k}": v for k, v in zip(KS, curves["popularity"], strict=True)})
    with training_run(settings, NAME) as run:
        return finish(
            name=NAME, run=run, predictor=model, input_example=example,
            metric=f"recall_at_{K}", value=value, baseline_value=base_value,
            feature_names=["person_id", "item_id"], feature_service="lake:interactions",
            window=window_tags(*data_window(events), cutoff),
            params={**PARAMS, "seed": seed, "n_interactions": len(train), "n_test_persons": len(relevant),
                    "n_items": len(model.item_ids_), "baseline": "popularity"},
            figure=fig, extra_metrics={k: v for k, v in extra.items() if k != f"recall_at_{K}"},
        )
