"""Train the budget allocator: Thompson sampling vs uniform, scored by replay on later touches."""

from __future__ import annotations

import pandas as pd

from config.settings import Settings
from models.budget_bandit import ThompsonBudgetAllocator, UniformAllocator, replay_evaluate
from training.common import TrainResult, finish, new_figure, training_run, window_tags
from training.datasets import bandit_log, data_window, load_action_economics
from training.splits import time_split

NAME = "budget_bandit"
PARAMS = {"prior_alpha": 1.0, "prior_beta": 1.0, "value_prior_weight": 1.0}
N_SAMPLES = 20_000


def train_bandit(settings: Settings, events: pd.DataFrame, *, seed: int = 0) -> TrainResult:
    """Replay-evaluate on the later quarter (policy warmed on the earlier part); register the allocator
    fitted on the whole log, whose shares are the budget recommendation."""
    log = bandit_log(events, load_action_economics(settings.actions_file))
    if log.empty:
        raise ValueError("no touches of catalog actions in the events: cannot train the budget bandit")
    channels = tuple(sorted(log["channel"].unique()))
    split = time_split(log, ts_col="ts", test_fraction=0.25)
    policy = ThompsonBudgetAllocator(channels=channels, **PARAMS).fit(split.train)
    value = replay_evaluate(policy, split.test, seed=seed)
    base_value = replay_evaluate(UniformAllocator(channels=channels), split.test, seed=seed)
    model = ThompsonBudgetAllocator(channels=channels, **PARAMS).fit(log)
    shares = model.budget_shares(N_SAMPLES, seed)
    fig = new_figure((6, 4))
    ax = fig.subplots()
    ax.bar(list(shares), list(shares.values()))
    ax.axhline(1 / len(channels), color="k", ls="--", lw=0.8, label="uniform")
    ax.set(ylabel="budget share", title="P(channel has best net reward per touch)")
    ax.legend()
    fig.tight_layout()
    extra = {f"share_{c}": s for c, s in shares.items()}
    extra.update({f"expected_reward_{c}": r for c, r in model.expected_rewards().items()})
    with training_run(settings, NAME) as run:
        return finish(
            name=NAME, run=run, predictor=model, input_example=pd.DataFrame({"as_of": [str(split.cutoff)]}),
            metric="replay_reward", value=value, baseline_value=base_value,
            feature_names=["channel", "reward"], feature_service="lake:touches",
            window=window_tags(*data_window(events), split.cutoff),
            params={**PARAMS, "seed": seed, "channels": ",".join(channels), "n_touches": len(log),
                    "n_test": len(split.test), "unknown_action_touches": log.attrs.get("unknown", 0),
                    "baseline": "uniform allocation"},
            figure=fig, extra_metrics=extra,
        )
