"""Simulate one world end to end and write it out: raw events for the product, truth for evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.behaviour import browse_events, link_events, order_events
from simulator.campaigns import campaign_events, consent_events
from simulator.catalog import CATEGORIES, CHANNELS
from simulator.churn import churn_truth
from simulator.config import WorldConfig
from simulator.events import EventLog
from simulator.identities import canonical_frame, sample_identities
from simulator.population import Population, item_cdf, item_utility, sample_items, sample_population

TRUTH_FRAMES: tuple[str, ...] = ("identifiers", "persons", "churn", "responses", "items")


@dataclass(frozen=True)
class World:
    """Raw events (features.schema.RAW_COLUMNS) plus the ground-truth frames kept apart from them."""

    events: pd.DataFrame
    identifiers: pd.DataFrame
    persons: pd.DataFrame
    churn: pd.DataFrame
    responses: pd.DataFrame
    items: pd.DataFrame
    config: WorldConfig
    # hidden state, for closed-loop runs that must answer new decisions (see conversion_probability)
    latent: Population | None = field(default=None, repr=False, compare=False)


def simulate(config: WorldConfig) -> World:
    """Draw a whole world from ``config``; pure and deterministic in ``config.seed``."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(8)]
    start = config.start_ts
    items = sample_items(config, streams[0])
    pop = sample_population(config, streams[1])
    ids = sample_identities(config.customers, streams[2])
    keys = pop.keys
    cdf = item_cdf(item_utility(pop, items))

    log = EventLog()
    browse_events(pop, ids, items, cdf, config.days, streams[3], log)
    order_person, order_t = order_events(pop, ids, items, cdf, config.days, streams[4], log)
    link_events(pop, ids, config.days, streams[5], log)
    consent = consent_events(pop, ids, config.days, config.withdraw_share, streams[6], log)
    responses = campaign_events(pop, ids, consent, config.days, config.touch_rate, streams[7], log, keys)
    events = log.to_frame(start, config.days, config.duplicate_share,
                          np.random.default_rng(np.random.SeedSequence(config.seed).spawn(9)[8]))

    responses["ts"] = _to_ts(start, responses["ts"].to_numpy())
    items_frame = pd.DataFrame({
        "item_id": items.ids, "category": np.array(CATEGORIES, dtype=object)[items.category],
        "popularity": items.popularity, "price": items.price,
    })
    return World(
        events=events, identifiers=canonical_frame(ids, keys), persons=_persons_frame(pop, keys, start),
        churn=churn_truth(pop, order_person, order_t, config.days, start, keys),
        responses=responses, items=items_frame, config=config, latent=pop,
    )


def write_world(world: World, raw_dir: str | Path, truth_dir: str | Path) -> dict[str, Path]:
    """Write raw/events.parquet and truth/<name>.parquet (dirs created, files overwritten)."""
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    paths = {"events": raw_dir / "events.parquet"}
    world.events.to_parquet(paths["events"], index=False)
    for name in TRUTH_FRAMES:
        paths[name] = truth_dir / f"{name}.parquet"
        getattr(world, name).to_parquet(paths[name], index=False)
    return paths


def _to_ts(start: pd.Timestamp, t: np.ndarray) -> pd.Series:
    ns = np.where(np.isfinite(t), t, 0.0) * 86400e9
    ts = pd.Series(start + pd.to_timedelta(ns.astype(np.int64), unit="ns")).dt.as_unit("ns")
    return ts.where(np.isfinite(t), pd.NaT)


def _persons_frame(pop: Population, keys: np.ndarray, start: pd.Timestamp) -> pd.DataFrame:
    frame = pd.DataFrame({
        "person_key": keys,
        "signup_at": _to_ts(start, pop.signup_t).to_numpy(),
        "churned_at": _to_ts(start, pop.churn_t).to_numpy(),
        "engagement": pop.engagement, "order_rate": pop.order_rate, "visit_rate": pop.visit_rate,
        "churn_hazard": pop.churn_hazard, "price_sensitivity": pop.price_sensitivity,
    })
    for j, c in enumerate(CHANNELS):
        frame[f"pref_{c}"] = pop.channel_pref[:, j]
    for j, c in enumerate(CATEGORIES):
        frame[f"affinity_{c}"] = pop.affinity[:, j]
    for j in range(pop.taste.shape[1]):
        frame[f"taste_{j}"] = pop.taste[:, j]
    return frame
