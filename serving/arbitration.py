"""Arbitration: rank surviving candidates by P x C x V x L, explore with Thompson sampling, take the top k.

Exploration follows Thompson sampling (Russo et al., 2018, "A Tutorial on Thompson Sampling"): the
propensity used for ranking is a draw from Beta(p n, (1 - p) n) around the model score p, where the
effective sample size n says how much we trust the model for that action. New actions start with a small
n (wide posterior, more exploration) that ramps up linearly over ``ramp_days`` after launch (maturity).
The model score itself is what the decision records as propensity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import numpy as np

from serving.candidates import Candidate, survivors
from serving.catalog import Action
from serving.policies import Exploration

__all__ = ["apply_context_weights", "arbitrate", "explore", "maturity", "select_top_k"]

EPS = 1e-6


def maturity(action: Action, now: datetime, ramp_days: float) -> float:
    """0 at launch (``valid_from``), 1 after ``ramp_days``; actions without a launch date are mature."""
    if action.valid_from is None or ramp_days <= 0:
        return 1.0
    age = (now - action.valid_from).total_seconds() / 86_400
    return float(min(1.0, max(0.0, age / ramp_days)))


def apply_context_weights(candidates: Sequence[Candidate], weights: Mapping[str, float]) -> None:
    """C: the context weight of the candidate's channel (1 unless configured)."""
    for c in candidates:
        c.context_weight = float(weights.get(c.channel, 1.0))


def explore(candidates: Sequence[Candidate], rng: np.random.Generator, now: datetime,
            settings: Exploration) -> None:
    """Set ``maturity`` and the Thompson draw ``sampled_propensity`` of each candidate (in place)."""
    if not candidates:
        return
    ramp, low, high = settings.ramp_days, settings.new_action_sample_size, settings.effective_sample_size
    alpha, beta = [], []
    for c in candidates:
        c.maturity = m = 1.0 if c.action.valid_from is None else maturity(c.action, now, ramp)
        p = min(max(c.propensity, EPS), 1 - EPS)
        n = low + m * (high - low)
        alpha.append(p * n)
        beta.append((1 - p) * n)
    if not settings.enabled:
        return
    # one vectorised draw for the whole chunk; plain floats around it (numpy's per-call cost dominates
    # the arithmetic for a request's ten candidates)
    for c, d in zip(candidates, rng.beta(alpha, beta).tolist(), strict=True):
        c.sampled_propensity = d


def select_top_k(candidates: Sequence[Candidate], limit: int,
                 constraint: Callable[[Candidate], str | None] | None = None,
                 on_pick: Callable[[Candidate], None] | None = None) -> list[Candidate]:
    """Greedy top ``limit`` by priority, at most one channel per action (no customer gets the same offer
    twice in one answer). ``constraint`` returns the rule a candidate would break (volume, caps), so a
    blocked candidate leaves room for the next one; ties break on action id then channel."""
    ranked = sorted(survivors(candidates), key=lambda c: (-c.priority, c.action.id, c.channel))
    chosen: list[Candidate] = []
    taken: set[str] = set()
    for c in ranked:
        if c.action.id in taken:
            c.remove("arbitration", "another channel ranked higher for this action")
            continue
        if len(chosen) >= limit:
            c.remove("top_k", "below the top-k cut")
            continue
        rule = constraint(c) if constraint is not None else None
        if rule is not None:
            c.remove("volume", rule)
            continue
        chosen.append(c)
        taken.add(c.action.id)
        if on_pick is not None:
            on_pick(c)
    return chosen


def arbitrate(candidates: list[Candidate], limit: int) -> list[Candidate]:
    """Top ``limit`` by priority without volume constraints (see :func:`select_top_k`)."""
    return select_top_k(candidates, limit)
