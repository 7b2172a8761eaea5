"""Churn ground truth: the exact probability of no order in the next 30 days, and what happened."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.population import Population

HORIZON = 30


def p_no_order(order_rate: np.ndarray, hazard: np.ndarray, alive: np.ndarray,
               horizon: float = HORIZON) -> np.ndarray:
    """P(no order in ``horizon`` days) for a person ordering at rate λ until churning at hazard h.

    With churn time T ~ Exp(h) and orders Poisson(λ) until T:
    E[exp(-λ·min(T, H))] = h/(h+λ)·(1 − e^{−(h+λ)H}) + e^{−(h+λ)H}; a churned person never orders again.
    """
    s = order_rate + hazard
    decay = np.exp(-s * horizon)
    p = np.where(s > 0, hazard / np.where(s > 0, s, 1.0) * (1.0 - decay) + decay, 1.0)
    return np.where(alive, p, 1.0)


def churn_truth(pop: Population, order_person: np.ndarray, order_t: np.ndarray, days: int,
                start: pd.Timestamp, person_keys: np.ndarray) -> pd.DataFrame:
    """Weekly as-of rows (day 30 .. days−30) for persons signed up by then.

    Columns: person_key, as_of (UTC), p_no_order_30d, no_order_30d (realised).
    """
    span = days + HORIZON + 1.0
    keys = np.sort(order_person * span + order_t)
    frames = []
    for as_of in range(30, days - HORIZON + 1, 7):
        person = np.flatnonzero(pop.signup_t <= as_of)
        alive = pop.churn_t[person] > as_of
        p = p_no_order(pop.order_rate[person], pop.churn_hazard[person], alive)
        lo = np.searchsorted(keys, person * span + as_of, side="right")
        hi = np.searchsorted(keys, person * span + as_of + HORIZON, side="right")
        frames.append(pd.DataFrame({
            "person_key": person_keys[person],
            "as_of": start + pd.Timedelta(days=as_of),
            "p_no_order_30d": p,
            "no_order_30d": hi == lo,
        }))
    if not frames:
        return pd.DataFrame({"person_key": pd.Series(dtype=object),
                             "as_of": pd.Series(dtype="datetime64[ns, UTC]"),
                             "p_no_order_30d": pd.Series(dtype=float), "no_order_30d": pd.Series(dtype=bool)})
    return pd.concat(frames, ignore_index=True)
