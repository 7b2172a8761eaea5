"""Persons and items with latent traits: the hidden state every observable event is drawn from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.catalog import CATEGORIES, CHANNELS
from simulator.config import WorldConfig

_CATEGORY_PRICE = np.array([60, 90, 45, 70, 250, 80, 40, 15, 20, 300], dtype=float)  # median price per category


@dataclass(frozen=True)
class Items:
    """Catalog of ``n`` items: category index, popularity (log scale), price, latent vector (n, k)."""

    category: np.ndarray
    popularity: np.ndarray
    price: np.ndarray
    latent: np.ndarray

    @property
    def ids(self) -> np.ndarray:
        return np.array([f"I{i + 1:04d}" for i in range(len(self.category))], dtype=object)


@dataclass(frozen=True)
class Population:
    """Latent traits of ``n`` persons; times are in days from the window start (floats).

    channel_pref: (n, 9) standard-normal preference per channel (CHANNELS order);
    affinity: (n, 10) Dirichlet category shares; taste: (n, k); engagement: (n,) N(0, 1) activity level;
    churn_t is ``inf`` for persons who do not churn within the window.
    """

    channel_pref: np.ndarray
    affinity: np.ndarray
    taste: np.ndarray
    price_sensitivity: np.ndarray
    engagement: np.ndarray
    order_rate: np.ndarray
    visit_rate: np.ndarray
    churn_hazard: np.ndarray
    signup_t: np.ndarray
    churn_t: np.ndarray

    @property
    def size(self) -> int:
        return len(self.engagement)

    @property
    def keys(self) -> np.ndarray:
        return np.array([f"T{i + 1:05d}" for i in range(self.size)], dtype=object)

    def alive_at(self, person: np.ndarray, t: np.ndarray) -> np.ndarray:
        """True where the person has signed up and not yet churned at time ``t``."""
        return (self.signup_t[person] <= t) & (t < self.churn_t[person])


def sample_items(config: WorldConfig, rng: np.random.Generator) -> Items:
    n = config.n_items
    category = rng.permutation(np.arange(n) % len(CATEGORIES))
    popularity = rng.normal(0.0, 1.0, n)
    price = np.round(_CATEGORY_PRICE[category] * rng.lognormal(0.0, 0.35, n), 2)
    latent = rng.normal(0.0, 1.0, (n, config.n_latent)) / np.sqrt(config.n_latent) * 1.6
    return Items(category=category, popularity=popularity, price=price, latent=latent)


def sample_population(config: WorldConfig, rng: np.random.Generator) -> Population:
    """Draw traits; churn hazard is higher for low-engagement persons, activity rises with engagement."""
    n = config.customers
    engagement = rng.normal(0.0, 1.0, n)
    channel_pref = rng.normal(0.0, 1.0, (n, len(CHANNELS)))
    affinity = rng.dirichlet(np.full(len(CATEGORIES), 0.5), n)
    taste = rng.normal(0.0, 1.0, (n, config.n_latent)) / np.sqrt(config.n_latent) * 1.6
    price_sensitivity = rng.beta(2.0, 2.0, n)
    # lognormal rates with the configured mean; engagement shifts them (mean-preserving correction).
    order_rate = config.order_rate * np.exp(0.6 * engagement - 0.18) * rng.lognormal(-0.08, 0.4, n)
    visit_rate = config.visit_rate * np.exp(0.5 * engagement - 0.125) * rng.lognormal(-0.08, 0.4, n)
    churn_hazard = config.churn_hazard * np.exp(-0.8 * engagement - 0.32) * rng.lognormal(-0.08, 0.4, n)
    new = rng.random(n) < config.new_customer_share
    signup_t = np.where(new, rng.uniform(0.0, config.days, n), -rng.uniform(1.0, 730.0, n))
    # memoryless hazard: pre-window persons are alive at the start and churn from then on
    churn_t = np.maximum(signup_t, 0.0) + rng.exponential(1.0, n) / churn_hazard
    churn_t = np.where(churn_t < config.days, churn_t, np.inf)
    return Population(
        channel_pref=channel_pref, affinity=affinity, taste=taste, price_sensitivity=price_sensitivity,
        engagement=engagement, order_rate=order_rate, visit_rate=visit_rate, churn_hazard=churn_hazard,
        signup_t=signup_t, churn_t=churn_t,
    )


def item_utility(pop: Population, items: Items) -> np.ndarray:
    """(n_persons, n_items) utility: taste·item + popularity + category affinity − price sensitivity."""
    log_aff = np.log(pop.affinity * len(CATEGORIES) + 1e-3)
    rel_price = np.log(items.price / np.median(items.price))
    return (pop.taste @ items.latent.T + 0.6 * items.popularity[None, :]
            + 1.2 * log_aff[:, items.category] - 0.8 * pop.price_sensitivity[:, None] * rel_price[None, :])


def choose_items(cdf: np.ndarray, person: np.ndarray, rng: np.random.Generator,
                 chunk: int = 20000) -> np.ndarray:
    """Draw one item per row of ``person`` from the per-person categorical given by ``cdf`` (n, n_items)."""
    out = np.empty(len(person), dtype=np.int64)
    u = rng.random(len(person))
    last = cdf.shape[1] - 1
    for lo in range(0, len(person), chunk):
        rows = cdf[person[lo:lo + chunk]]
        out[lo:lo + chunk] = np.minimum((rows < u[lo:lo + chunk, None]).sum(axis=1), last)
    return out


def item_cdf(utility: np.ndarray) -> np.ndarray:
    w = np.exp(utility - utility.max(axis=1, keepdims=True))
    cdf = np.cumsum(w, axis=1)
    return cdf / cdf[:, -1:]
