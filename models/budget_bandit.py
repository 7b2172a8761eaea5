"""Budget allocation across outbound channels as a Bernoulli bandit with Thompson sampling.

Each channel is an arm. A touch converts with an unknown rate (Beta posterior); a conversion is worth the
channel's mean conversion value and every touch costs the channel's mean cost. The net expected reward of
a channel is ``rate * value - cost``. The budget share of a channel is the posterior probability that it
has the best net expected reward: Thompson sampling's action probabilities (Russo et al., 2018, "A Tutorial
on Thompson Sampling"), used as population-level volume targets. Verbs follow Open Bandit Pipeline:
``initialize``, ``select_action``, ``update_params``.

Offline evaluation: :func:`replay_evaluate`, the replay method of Li et al. (2010), "A Contextual-Bandit
Approach to Personalized News Article Recommendation" (unbiased when the logging policy was uniform).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

STATE_FILE = "bandit.json"


class ThompsonBudgetAllocator:
    """Thompson-sampling allocator over channels with Beta posteriors on conversion.

    Parameters
    ----------
    channels : sequence of str
        The arms, in a fixed order.
    prior_alpha, prior_beta : float, default=1.0
        Beta prior on each channel's conversion rate per touch.
    value_prior_weight : float, default=1.0
        Pseudo-conversions that shrink a channel's mean conversion value towards the pooled mean.

    Attributes
    ----------
    alpha_, beta_ : np.ndarray, shape (n_channels,)
        Beta posterior parameters.
    touches_, conversions_, value_sum_, cost_sum_ : np.ndarray, shape (n_channels,)
    """

    def __init__(
        self,
        *,
        channels: Sequence[str],
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        value_prior_weight: float = 1.0,
    ) -> None:
        self.channels = channels
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta
        self.value_prior_weight = value_prior_weight

    def get_params(self) -> dict:
        return {
            "channels": list(self.channels), "prior_alpha": self.prior_alpha, "prior_beta": self.prior_beta,
            "value_prior_weight": self.value_prior_weight,
        }

    # -- OBP verbs --------------------------------------------------------------------------------
    def initialize(self) -> ThompsonBudgetAllocator:
        """Reset the posteriors to the prior."""
        channels = [str(c) for c in self.channels]
        if not channels:
            raise ValueError("channels must name at least one channel")
        if len(set(channels)) != len(channels):
            raise ValueError(f"channels must be unique, got {channels}")
        if self.prior_alpha <= 0 or self.prior_beta <= 0:
            raise ValueError(f"prior_alpha and prior_beta must be > 0, got {self.prior_alpha}, {self.prior_beta}")
        if self.value_prior_weight < 0:
            raise ValueError(f"value_prior_weight must be >= 0, got {self.value_prior_weight}")
        self.channel_index_ = {c: i for i, c in enumerate(channels)}
        n = len(channels)
        self.touches_ = np.zeros(n)
        self.conversions_ = np.zeros(n)
        self.value_sum_ = np.zeros(n)
        self.cost_sum_ = np.zeros(n)
        self._refresh()
        return self

    def _ensure(self) -> None:
        if getattr(self, "alpha_", None) is None:
            self.initialize()

    def _refresh(self) -> None:
        self.alpha_ = self.prior_alpha + self.conversions_
        self.beta_ = self.prior_beta + self.touches_ - self.conversions_

    @property
    def n_actions(self) -> int:
        return len(self.channels)

    def _mean_value(self) -> np.ndarray:
        """Per-channel mean conversion value, shrunk towards the pooled mean (value if converted)."""
        total_conv = self.conversions_.sum()
        pooled = self.value_sum_.sum() / total_conv if total_conv > 0 else 1.0
        w = float(self.value_prior_weight)
        denom = self.conversions_ + w
        return np.where(denom > 0, (self.value_sum_ + w * pooled) / np.maximum(denom, 1e-12), pooled)

    def _mean_cost(self) -> np.ndarray:
        return np.where(self.touches_ > 0, self.cost_sum_ / np.maximum(self.touches_, 1), 0.0)

    def _sample_rewards(self, rng: np.random.Generator, n_samples: int) -> np.ndarray:
        """Posterior draws of the net expected reward per touch, shape (n_samples, n_channels)."""
        rates = rng.beta(self.alpha_, self.beta_, size=(n_samples, len(self.alpha_)))
        return rates * self._mean_value() - self._mean_cost()

    def select_action(self, rng: np.random.Generator) -> str:
        """One Thompson draw: the channel whose sampled net reward is highest."""
        self._ensure()
        draws = self._sample_rewards(rng, 1)[0]
        return str(self.channels[int(np.argmax(draws))])

    def update_params(self, action: str, reward: float, cost: float = 0.0) -> None:
        """Record one touch on channel ``action`` with net ``reward`` (= conversion value - ``cost``).

        A touch counts as converted when its gross value ``reward + cost`` is positive.
        """
        self._ensure()
        idx = self.channel_index_.get(str(action))
        if idx is None:
            raise ValueError(f"action {action!r} is not one of channels {list(self.channels)}")
        gross = float(reward) + float(cost)
        converted = gross > 0
        self.touches_[idx] += 1
        self.cost_sum_[idx] += float(cost)
        if converted:
            self.conversions_[idx] += 1
            self.value_sum_[idx] += gross
        self.alpha_[idx] = self.prior_alpha + self.conversions_[idx]
        self.beta_[idx] = self.prior_beta + self.touches_[idx] - self.conversions_[idx]

    def fit(self, logged: pd.DataFrame) -> ThompsonBudgetAllocator:
        """Batch update from a log with columns ``channel, reward`` (and optional ``cost``)."""
        self.initialize()
        _check_log(logged)
        log = logged[logged["channel"].astype(str).isin(self.channel_index_)]
        cost = log["cost"].astype(float) if "cost" in log else pd.Series(0.0, index=log.index)
        gross = log["reward"].astype(float) + cost
        idx = log["channel"].astype(str).map(self.channel_index_).to_numpy()
        n = len(self.channel_index_)
        conv = (gross > 0).to_numpy()
        self.touches_ = np.bincount(idx, minlength=n).astype(float)
        self.conversions_ = np.bincount(idx, weights=conv.astype(float), minlength=n)
        self.value_sum_ = np.bincount(idx, weights=np.where(conv, gross.to_numpy(), 0.0), minlength=n)
        self.cost_sum_ = np.bincount(idx, weights=cost.to_numpy(), minlength=n)
        self._refresh()
        return self

    # -- outputs ----------------------------------------------------------------------------------
    def action_probabilities(self, n_samples: int = 10_000, seed: int = 0) -> np.ndarray:
        """P(channel has the best net expected reward), shape (n_channels,), by Monte Carlo."""
        self._ensure()
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples!r}")
        draws = self._sample_rewards(np.random.default_rng(seed), int(n_samples))
        wins = np.bincount(np.argmax(draws, axis=1), minlength=draws.shape[1])
        return wins / wins.sum()

    def budget_shares(self, n_samples: int = 10_000, seed: int = 0) -> dict[str, float]:
        """Budget share per channel (sums to 1): Thompson's probability that the channel is best."""
        probs = self.action_probabilities(n_samples, seed)
        return {str(c): float(p) for c, p in zip(self.channels, probs, strict=True)}

    def expected_rewards(self) -> dict[str, float]:
        """Posterior-mean net reward per touch and channel (for reports)."""
        self._ensure()
        rate = self.alpha_ / (self.alpha_ + self.beta_)
        net = rate * self._mean_value() - self._mean_cost()
        return {str(c): float(v) for c, v in zip(self.channels, net, strict=True)}

    # -- persistence ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        self._ensure()
        return {
            "class": type(self).__name__, "params": self.get_params(),
            "touches": self.touches_.tolist(), "conversions": self.conversions_.tolist(),
            "value_sum": self.value_sum_.tolist(), "cost_sum": self.cost_sum_.tolist(),
        }

    @classmethod
    def from_dict(cls, state: dict) -> ThompsonBudgetAllocator:
        if state.get("class") != cls.__name__:
            raise ValueError(f"state holds a {state.get('class')!r}, not a {cls.__name__}")
        model = cls(**state["params"]).initialize()
        model.touches_ = np.asarray(state["touches"], dtype=float)
        model.conversions_ = np.asarray(state["conversions"], dtype=float)
        model.value_sum_ = np.asarray(state["value_sum"], dtype=float)
        model.cost_sum_ = np.asarray(state["cost_sum"], dtype=float)
        model._refresh()
        return model

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / STATE_FILE).write_text(json.dumps(self.to_dict(), indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ThompsonBudgetAllocator:
        return cls.from_dict(json.loads((Path(directory) / STATE_FILE).read_text()))


class UniformAllocator:
    """Baseline: every channel gets the same share and is chosen uniformly at random."""

    def __init__(self, *, channels: Sequence[str]) -> None:
        self.channels = channels

    def get_params(self) -> dict:
        return {"channels": list(self.channels)}

    def select_action(self, rng: np.random.Generator) -> str:
        if len(self.channels) == 0:
            raise ValueError("channels must name at least one channel")
        return str(self.channels[int(rng.integers(len(self.channels)))])

    def update_params(self, action: str, reward: float, cost: float = 0.0) -> None:
        """Uniform allocation does not learn."""

    def fit(self, logged: pd.DataFrame) -> UniformAllocator:
        return self

    def budget_shares(self, n_samples: int = 10_000, seed: int = 0) -> dict[str, float]:
        n = len(self.channels)
        return {str(c): 1.0 / n for c in self.channels}


def _check_log(logged: pd.DataFrame) -> None:
    missing = [c for c in ("channel", "reward") if c not in logged.columns]
    if missing:
        raise ValueError(f"logged is missing columns {missing}")


def replay_evaluate(policy, logged: pd.DataFrame, seed: int = 0) -> float:
    """Replay estimate of a policy's mean reward per round (Li et al., 2010).

    Walks the logged touches in ``ts`` order; whenever the policy's choice equals the logged channel, the
    logged reward counts and the policy learns from it (``update_params``); other rounds are skipped.

    Parameters
    ----------
    policy : object with ``select_action(rng)`` and ``update_params(action, reward, cost)``
        Mutated by the replay (it keeps learning).
    logged : DataFrame with columns ``channel, reward, ts`` (optional ``cost``).
    seed : int

    Returns
    -------
    float
        Mean reward per matched round; NaN when no round matched.
    """
    _check_log(logged)
    if "ts" not in logged.columns:
        raise ValueError("logged is missing columns ['ts']")
    log = logged.sort_values("ts", kind="stable")
    rng = np.random.default_rng(seed)
    channels = log["channel"].astype(str).to_numpy()
    rewards = log["reward"].astype(float).to_numpy()
    costs = log["cost"].astype(float).to_numpy() if "cost" in log else np.zeros(len(log))
    total, matched = 0.0, 0
    for channel, reward, cost in zip(channels, rewards, costs, strict=True):
        if policy.select_action(rng) != channel:
            continue
        total += reward
        matched += 1
        policy.update_params(channel, reward, cost)
    return total / matched if matched else float("nan")
