"""Simulate one world end to end and write it out: raw events for the product, truth for evaluation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.behaviour import browse_events, link_events, order_events
from simulator.campaigns import campaign_events, consent_events
from simulator.catalog import CATEGORIES, CHANNELS
from simulator.channels import write_channel_files
from simulator.churn import churn_truth
from simulator.config import WorldConfig
from simulator.events import CH, ET, EventLog, hex16, raw_frame, splitmix64
from simulator.identities import Identities, canonical_frame, sample_identities
from simulator.population import Items, Population, item_cdf, item_utility, sample_items, sample_population
from simulator.traps import (
    arrivals,
    duplicate,
    home_store,
    recycle_phones,
    share_family_tablets,
    skew_clocks,
    store_identifiers,
)

TRUTH_FRAMES: tuple[str, ...] = ("identifiers", "persons", "churn", "responses", "items", "shared_identifiers",
                                  "traps")
CHUNK_PERSONS = 25_000  # persons simulated together; a world is the same whatever is done with its chunks


@dataclass(frozen=True)
class World:
    """Raw events (features.schema.RAW_COLUMNS) plus the ground-truth frames kept apart from them.

    ``identifiers`` has (id_type, id_value, person_key, valid_from, valid_to, shared): a recycled phone has
    one row per holder with the validity of each; ``shared`` marks a family tablet (listed under its owner).
    ``shared_identifiers`` lists every identifier used by several persons (id_type, id_value, kind,
    person_key): family tablets (with each user), store kiosks and assistant terminals (person_key None).
    ``traps`` lists (event_id, trap, detail) for planted late arrivals, duplicates, clock skew, kiosk logins.
    ``table`` is the columnar event table the per-channel files are written from.
    """

    events: pd.DataFrame
    identifiers: pd.DataFrame
    persons: pd.DataFrame
    churn: pd.DataFrame
    responses: pd.DataFrame
    items: pd.DataFrame
    config: WorldConfig
    shared_identifiers: pd.DataFrame = field(default=None, repr=False, compare=False)
    traps: pd.DataFrame = field(default=None, repr=False, compare=False)
    table: pd.DataFrame = field(default=None, repr=False, compare=False)
    # hidden state, for closed-loop runs that must answer new decisions (see conversion_probability)
    latent: Population | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Chunk:
    """One chunk of persons: its event table (with event_id, ts, arrival_ts) and its truth frames."""

    index: int
    table: pd.DataFrame
    truth: dict[str, pd.DataFrame]
    population: Population


def _salt(config: WorldConfig) -> int:
    return config.seed % (1 << 20)


def _items(config: WorldConfig) -> Items:
    return sample_items(config, np.random.default_rng(np.random.SeedSequence([config.seed, 0xFFFF])))


def simulate_chunk(config: WorldConfig, index: int, items: Items | None = None) -> Chunk:
    """Persons ``index * CHUNK_PERSONS`` .. of the world, drawn from their own seed stream."""
    items = _items(config) if items is None else items
    lo = index * CHUNK_PERSONS
    n = min(CHUNK_PERSONS, config.customers - lo)
    if n <= 0:
        raise ValueError(f"chunk index {index} is beyond {config.customers} customers")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence([config.seed, index]).spawn(12)]
    salt, start = _salt(config), config.start_ts
    pop = sample_population(replace(config, customers=n), streams[1])
    ids = sample_identities(n, streams[2], offset=lo, salt=salt)
    keys = np.array([f"T{i + 1:05d}" for i in range(lo, lo + n)], dtype=object)
    cdf = item_cdf(item_utility(pop, items))
    id_base = index << 36

    log = EventLog()
    browse_events(pop, ids, items, cdf, config.days, streams[3], log)
    order_person, order_t = order_events(pop, ids, items, cdf, config.days, streams[4], log, id_base)
    link_events(pop, ids, config.days, streams[5], log)
    consent = consent_events(pop, ids, config.days, config.withdraw_share, streams[6], log)
    responses = campaign_events(pop, ids, consent, config.days, config.touch_rate, streams[7], log, keys,
                                id_base ^ (salt << 20))
    del cdf
    table = log.table(config.days)
    del log
    table["trap"] = pd.Series([None] * len(table), dtype=object)

    table, recycled = recycle_phones(table, pop, ids, config.recycled_phone_share, streams[8])
    table, family = share_family_tablets(table, ids, config.family_device_share, streams[8])
    store = home_store(np.arange(lo, lo + n), config.customers, salt)
    table = store_identifiers(table, store, salt, streams[9])
    table, skew = skew_clocks(table, ids, config.skewed_device_share, streams[9])
    table = arrivals(table, config.late_share, streams[10])
    table = table.sort_values("t", kind="stable").reset_index(drop=True)
    seq = (np.uint64(index) << np.uint64(36)) + np.arange(len(table), dtype=np.uint64)
    table["event_id"] = np.array(["ev_" + h for h in hex16(splitmix64(seq ^ np.uint64(salt << 40)))], dtype=object)
    table = duplicate(table, config.duplicate_share, streams[11])
    table["ts"] = _seconds_ts(start, table["t"].to_numpy())
    table["arrival_ts"] = _seconds_ts(start, table["arrival_t"].to_numpy())
    table["store"] = store[table["person"].to_numpy()]
    table["person_key"] = keys[table["person"].to_numpy()]

    touched = table.loc[table["etype"] == ET["touch"], "p_touch_id"]
    responses = responses[responses["touch_id"].isin(touched)].reset_index(drop=True)  # SMS to a handed-over number
    responses["ts"] = _to_ts(start, responses["ts"].to_numpy())
    truth = {
        "identifiers": _identifier_truth(ids, keys, recycled, family, start),
        "persons": _persons_frame(pop, keys, start),
        "churn": churn_truth(pop, order_person, order_t, config.days, start, keys),
        "responses": responses,
        "shared_identifiers": _shared_truth(ids, keys, family, table),
        "traps": _trap_truth(table, skew, keys),
    }
    return Chunk(index=index, table=table, truth=truth, population=pop)


def n_chunks(config: WorldConfig) -> int:
    return -(-config.customers // CHUNK_PERSONS)


def iter_chunks(config: WorldConfig) -> Iterator[Chunk]:
    """The world's chunks one after another (only one is held at a time by the caller)."""
    items = _items(config)
    for index in range(n_chunks(config)):
        yield simulate_chunk(config, index, items)


def simulate(config: WorldConfig) -> World:
    """Draw a whole world from ``config`` in memory (small worlds); pure and deterministic in ``config.seed``."""
    items = _items(config)
    chunks = list(iter_chunks(config))
    table = pd.concat([c.table for c in chunks], ignore_index=True).sort_values("t", kind="stable")
    table = table.reset_index(drop=True)
    truth = {name: pd.concat([c.truth[name] for c in chunks], ignore_index=True) for name in chunks[0].truth}
    latent = chunks[0].population if len(chunks) == 1 else None
    return World(
        events=raw_frame(table), items=_items_frame(items), config=config, table=table, latent=latent,
        **{name: truth[name] for name in truth},
    )


def write_world(world: World, raw_dir: str | Path, truth_dir: str | Path) -> dict[str, Path]:
    """Write the per-channel raw files under ``raw_dir`` and truth/<name>.parquet (files overwritten)."""
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    _reset(raw_dir)
    truth_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"raw": raw_dir}
    write_channel_files(world.table, raw_dir, world.config.start_ts, part=0)
    for name in TRUTH_FRAMES:
        paths[name] = truth_dir / f"{name}.parquet"
        getattr(world, name).to_parquet(paths[name], index=False)
    return paths


def stream_world(config: WorldConfig, raw_dir: str | Path, truth_dir: str | Path,
                 echo=lambda _: None) -> dict[str, int]:
    """Simulate chunk by chunk straight to files: memory stays bounded by one chunk, whatever the size.

    Truth frames are appended chunk by chunk to truth/<name>.parquet (one row group per chunk).
    Returns counts: customers, chunks, events (rows written, duplicates included), files.
    """
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    _reset(raw_dir)
    _reset(truth_dir)
    _items_frame(_items(config)).to_parquet(truth_dir / "items.parquet", index=False)
    events = files = 0
    writers: dict[str, pq.ParquetWriter] = {}
    try:
        for chunk in iter_chunks(config):
            files += write_channel_files(chunk.table, raw_dir, config.start_ts, part=chunk.index)
            events += len(chunk.table)
            for name, frame in chunk.truth.items():
                if name not in writers:
                    schema = pa.Table.from_pandas(frame, preserve_index=False).schema
                    writers[name] = pq.ParquetWriter(truth_dir / f"{name}.parquet", schema)
                writers[name].write_table(pa.Table.from_pandas(frame, schema=writers[name].schema,
                                                               preserve_index=False))
            echo(f"  chunk {chunk.index + 1}/{n_chunks(config)}: {events:,} events so far")
            del chunk
    finally:
        for writer in writers.values():
            writer.close()
    return {"customers": config.customers, "chunks": n_chunks(config), "events": events, "files": files}


def read_truth(truth_dir: str | Path, name: str) -> pd.DataFrame:
    """A truth frame written by :func:`write_world` or :func:`stream_world`."""
    return pd.read_parquet(Path(truth_dir) / f"{name}.parquet")


def _reset(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def _items_frame(items: Items) -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": items.ids, "category": np.array(CATEGORIES, dtype=object)[items.category],
        "popularity": items.popularity, "price": items.price,
    })


def _seconds_ts(start: pd.Timestamp, t: np.ndarray) -> pd.Series:
    seconds = np.floor(t * 86400.0).astype(np.int64)
    return pd.Series(pd.DatetimeIndex(start + pd.to_timedelta(seconds, unit="s")).as_unit("ns"))


def _identifier_truth(ids: Identities, keys: np.ndarray, recycled: pd.DataFrame, family: pd.DataFrame,
                      start: pd.Timestamp) -> pd.DataFrame:
    frame = canonical_frame(ids, keys)
    frame["valid_from"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    frame["valid_to"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    frame["shared"] = False
    if len(family):
        unused = set(keys[family["user"].to_numpy()])
        frame = frame[~((frame["id_type"] == "device_id") & frame["person_key"].isin(unused))]
        owners = set(keys[family["owner"].to_numpy()])
        frame.loc[(frame["id_type"] == "device_id") & frame["person_key"].isin(owners), "shared"] = True
    if len(recycled):
        when = _to_ts(start, recycled["handover_t"].to_numpy())
        phone = frame["id_type"] == "phone"
        prev = dict(zip(keys[recycled["previous"].to_numpy()], when, strict=True))
        new = dict(zip(keys[recycled["new"].to_numpy()], keys[recycled["previous"].to_numpy()], strict=True))
        is_prev = phone & frame["person_key"].isin(prev)
        frame.loc[is_prev, "valid_to"] = frame.loc[is_prev, "person_key"].map(prev)
        is_new = phone & frame["person_key"].isin(new)
        number = frame[phone].set_index("person_key")["id_value"]
        frame.loc[is_new, "id_value"] = frame.loc[is_new, "person_key"].map(new).map(number)
        frame.loc[is_new, "valid_from"] = frame.loc[is_new, "person_key"].map(new).map(prev)
    return frame.reset_index(drop=True)


def _shared_truth(ids: Identities, keys: np.ndarray, family: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    parts = []
    if len(family):
        owners, users = family["owner"].to_numpy(), family["user"].to_numpy()
        device = ids.values["device_id"]
        first = np.unique(owners)
        parts.append(pd.DataFrame({"id_type": "device_id", "id_value": device[first], "kind": "family_tablet",
                                   "person_key": keys[first]}))
        parts.append(pd.DataFrame({"id_type": "device_id", "id_value": device[owners], "kind": "family_tablet",
                                   "person_key": keys[users]}))
    guide = table[table["channel"] == CH["guide"]]
    parts.append(pd.DataFrame({"id_type": "device_id", "id_value": guide["id_device_id"].unique(),
                               "kind": "assistant_terminal", "person_key": None}))
    kiosk = table.loc[table["trap"] == "store_kiosk", "id_cookie_id"].unique()
    parts.append(pd.DataFrame({"id_type": "cookie_id", "id_value": kiosk, "kind": "store_kiosk", "person_key": None}))
    frame = pd.concat(parts, ignore_index=True)
    frame["person_key"] = frame["person_key"].astype(object)
    return frame


def _trap_truth(table: pd.DataFrame, skew: pd.DataFrame, keys: np.ndarray) -> pd.DataFrame:
    rows = table[table["trap"].notna()]
    detail = np.where(rows["trap"] == "clock_skew",
                      rows["person"].map(skew.set_index("person")["skew_seconds"]).round(0).astype(str) + " s",
                      "")
    late = (rows["arrival_t"] - rows["t"]).to_numpy()
    detail = np.where(rows["trap"].isin(["late_arrival", "duplicate"]),
                      np.char.add(np.round(late, 2).astype(str), " days"), detail)
    return pd.DataFrame({"event_id": rows["event_id"].to_numpy(), "trap": rows["trap"].to_numpy(),
                         "detail": detail.astype(object), "person_key": keys[rows["person"].to_numpy()]})


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
