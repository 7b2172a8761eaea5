"""Real-time freshness: pushed raw events reach the lake and their persons' online features at once.

Pushed events go through ingestion (validation, quarantine, keying of PII, dedup) into the lake like any
other source. The persons they resolve to through the stored One-ID map get their current feature rows
recomputed — the batch feature code, at ``as_of`` = the latest event time, on those persons' events, with
the population's category prices and the last snapshot's CLV models — and written to the online store.
Events of identifiers One-ID has not seen yet stay in the lake for the next identity run.

:class:`RealtimeUpdater` keeps the resolved lake in memory, so a long-lived process (the service) pays
the lake read once and each push costs milliseconds; :func:`push_events` / :func:`push_files` are the
one-shot forms (``nba push``).
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from config.settings import Settings
from features.schema import RAW_COLUMNS

__all__ = ["PushReport", "RealtimeUpdater", "push_events", "push_files", "write_online"]


@dataclass(frozen=True)
class PushReport:
    """Outcome of one push: ingestion counts, the persons whose online rows were rewritten, timing."""

    rows_read: int
    rows_kept: int
    duplicates: int
    quarantined: dict[str, int]
    persons: list[str]
    unresolved_events: int
    as_of: pd.Timestamp | None
    seconds: float


def _raw_file(events: pd.DataFrame, folder: Path) -> Path:
    missing = [c for c in RAW_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events must have the raw columns {list(RAW_COLUMNS)}; missing {missing}")
    frame = events[list(RAW_COLUMNS)].copy()
    for col in ("event_id", "channel", "event_type", "identifiers", "properties"):
        frame[col] = frame[col].astype(object)
    frame["ts"] = frame["ts"].map(lambda v: None if pd.isna(v) else pd.Timestamp(v).isoformat())
    digest = hashlib.sha1("\n".join(map(str, frame["event_id"])).encode("utf-8")).hexdigest()[:16]
    path = folder / f"push-{digest}.parquet"
    frame.to_parquet(path, index=False)
    return path


class RealtimeUpdater:
    """Holds the resolved lake, identity map, CLV models and category prices of one state folder."""

    def __init__(self, settings: Settings):
        from features.engineering import catalog_discounts
        from features.engineering_base import prepare_events
        from features.engineering_behaviour import category_mean_prices
        from features.engineering_value import fit_value_models, read_value_models
        from features.identity import attach_person_ids, read_identity_map, read_lake_events

        self.settings = settings
        self.identity_map = read_identity_map(settings.identity_dir)
        resolved = attach_person_ids(read_lake_events(settings.lake_dir), self.identity_map)
        self.events = resolved[resolved["person_id"].notna()].reset_index(drop=True)
        self.discounts = catalog_discounts()
        coded = prepare_events(self.events, self.discounts)
        everything = np.ones(len(coded.ts), dtype=bool)
        self.category_prices = category_mean_prices(coded, everything)
        self.value_models = read_value_models(settings.features_dir)
        if self.value_models is None and len(coded.ts):
            self.value_models = fit_value_models(coded, int(coded.ts.max()))
        self._store = None

    def push_events(self, events: pd.DataFrame) -> PushReport:
        """Push raw events (columns :data:`features.schema.RAW_COLUMNS`, JSON identifiers/properties)."""
        with tempfile.TemporaryDirectory(prefix="nba-push-") as tmp:
            return self.push_files([_raw_file(events, Path(tmp))])

    def push_files(self, paths: list[Path]) -> PushReport:
        """Ingest raw event files, then recompute and write the online rows of the persons they touch."""
        from features.adapters import read_raw
        from features.identity import attach_person_ids
        from features.ingest import ingest

        began = time.perf_counter()
        paths = [Path(p) for p in paths]
        report = ingest(paths, self.settings.lake_dir, self.settings.quarantine_dir, self.settings.id_salt())
        raw = read_raw(paths)
        stored = self._lake_rows({str(e) for e in raw["event_id"].dropna()}, raw["ts"])
        stored = stored[~stored["event_id"].isin(self.events["event_id"])]
        resolved = attach_person_ids(stored, self.identity_map)
        unresolved = int(resolved["person_id"].isna().sum())
        new = resolved[resolved["person_id"].notna()]
        persons = sorted(set(new["person_id"]))
        as_of = None
        if persons:
            self.events = pd.concat([self.events, new], ignore_index=True)
            as_of = pd.Timestamp(self.events["ts"].max())
            if self._store is None:
                from features.store import open_store

                self._store = open_store(self.settings)
            write_online(self.settings, self.features_for(persons, as_of), self._store)
        return PushReport(rows_read=report.rows_read, rows_kept=report.rows_kept, duplicates=report.duplicates,
                          quarantined=dict(report.quarantined), persons=persons, unresolved_events=unresolved,
                          as_of=as_of, seconds=time.perf_counter() - began)

    def features_for(self, persons: list[str], as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
        """The persons' feature rows at ``as_of`` from their own events and the population's figures."""
        from features.engineering import build_feature_snapshots

        mine = self.events[self.events["person_id"].isin(persons)]
        return build_feature_snapshots(mine, [as_of], action_discounts=self.discounts,
                                       value_models=self.value_models, category_prices=self.category_prices)

    def _lake_rows(self, event_ids: set[str], ts: pd.Series) -> pd.DataFrame:
        """The lake rows of ``event_ids``: only the date partitions of their timestamps are read."""
        from features.identity import read_lake_events

        if not event_ids:
            return read_lake_events(self.settings.lake_dir).iloc[:0]
        dates = sorted({d.strftime("%Y-%m-%d") for d in pd.to_datetime(ts, utc=True, errors="coerce").dropna()})
        files = [f for d in dates for f in Path(self.settings.lake_dir).rglob(f"date={d}/*.parquet")]
        if not files:  # an unpartitioned lake: read it whole
            lake = read_lake_events(self.settings.lake_dir)
            return lake[lake["event_id"].isin(event_ids)].reset_index(drop=True)
        template = self.events.iloc[:0].drop(columns="person_id")
        rows = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        rows = rows[rows["event_id"].isin(event_ids)]
        return pd.concat([template, rows[list(template.columns)]], ignore_index=True).astype(template.dtypes)


def push_events(settings: Settings, events: pd.DataFrame) -> PushReport:
    """One-shot :meth:`RealtimeUpdater.push_events` (loads the lake first; a service keeps an updater)."""
    return RealtimeUpdater(settings).push_events(events)


def push_files(settings: Settings, paths: list[Path]) -> PushReport:
    """One-shot :meth:`RealtimeUpdater.push_files` (what ``nba push FILE...`` runs)."""
    return RealtimeUpdater(settings).push_files(paths)


def write_online(settings: Settings, frames: dict[str, pd.DataFrame], store=None) -> None:
    """Write per-view feature rows to the online store: fast SQLite path, else Feast's online write."""
    from features.materialize import is_sqlite_online, write_online_rows
    from features.store import open_store

    store = store or open_store(settings)
    if not is_sqlite_online(store):
        for view, frame in frames.items():
            if len(frame):
                store.write_to_online_store(view, frame, allow_registry_cache=True)
        return
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    conn = sqlite3.connect(SqliteOnlineStore._get_db_path(store.config), timeout=60)
    try:
        with conn:
            for view, frame in frames.items():
                write_online_rows(store, store.get_feature_view(view, allow_registry_cache=True), frame,
                                  connection=conn)
    finally:
        conn.close()
