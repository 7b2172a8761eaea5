"""Thin orchestration: one function per stage, each reading and writing the state folder of ``settings``.

No domain logic lives here; every stage calls the package that owns it and prints one progress line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from config import Settings


@contextmanager
def stage(name: str, echo: Callable[[str], None] = print):
    start = time.perf_counter()
    echo(f"[{name}] ...")
    yield
    echo(f"[{name}] done in {time.perf_counter() - start:.1f} s")


def simulate(settings: Settings, customers: int, days: int, seed: int, echo=print) -> dict:
    from simulator import WorldConfig, stream_world

    with stage("simulate", echo):
        counts = stream_world(WorldConfig(customers=customers, days=days, seed=seed), settings.raw_dir,
                              settings.truth_dir, echo)
        echo(f"  {customers} customers, {days} days, {counts['events']:,} raw events in {counts['files']:,} files")
    return counts


def ingest(settings: Settings, sources: list[Path] | None = None, echo=print):
    from features.adapters import raw_sources
    from features.ingest import ingest as run_ingest

    sources = [p for s in sources for p in raw_sources(s)] if sources else raw_sources(settings.raw_dir)
    with stage("ingest", echo):
        report = run_ingest(sources, settings.lake_dir, settings.quarantine_dir, settings.id_salt())
        echo(
            f"  read {report.rows_read:,}, kept {report.rows_kept:,}, duplicates {report.duplicates:,}, "
            f"quarantined {sum(report.quarantined.values()):,} {dict(report.quarantined)}"
        )
    return report


def resolve_identities(settings: Settings, echo=print, since: pd.Timestamp | None = None) -> pd.DataFrame:
    """Full One-ID over the lake; with ``since`` only lake events from then on are added to the stored state."""
    from features.identity import (
        read_identity_state,
        read_lake_events,
        update_identities,
        write_identity_state,
    )

    with stage("identity", echo):
        previous = read_identity_state(settings.identity_dir)
        events = read_lake_events(settings.lake_dir)
        if since is not None and previous is not None:
            events = events[events["ts"] >= since]
        state = update_identities(previous, events, restart=since is None)
        write_identity_state(state, settings.identity_dir)
        st = state.stats
        echo(f"  {st['identifiers']:,} identifiers -> {st['persons']:,} persons; {st['shared']:,} shared, "
             f"{st['split']:,} split into eras; {len(state.changes):,} merges/splits logged")
    return state.map


def build_features(settings: Settings, echo=print) -> None:
    from features.engineering import (
        build_feature_snapshots,
        latest_value_models,
        snapshot_dates,
        write_feature_tables,
    )
    from features.engineering_value import write_value_models
    from features.identity import load_resolved_events

    with stage("features", echo):
        events = load_resolved_events(settings.lake_dir, settings.identity_dir)
        dates = snapshot_dates(events["ts"].min().normalize() + pd.Timedelta(days=28), events["ts"].max())
        frames = build_feature_snapshots(events, dates)
        write_feature_tables(frames, settings.features_dir)
        # the latest snapshot's CLV models, reused by real-time pushes (features.realtime)
        write_value_models(latest_value_models(events, dates[-1]), settings.features_dir)
        n = sum(len(f.columns) - 2 for f in frames.values())
        echo(f"  {len(frames)} feature views, {n} features, {len(dates)} snapshots")


def feast_apply(settings: Settings, echo=print) -> None:
    from features.store import apply

    with stage("feast apply", echo):
        apply(settings)


def feast_materialize(settings: Settings, echo=print, use_feast: bool = False) -> None:
    """Latest snapshots into the online store: the fast SQLite path unless ``use_feast`` or another store."""
    from features.materialize import fast_materialize, is_sqlite_online
    from features.store import materialize, open_store

    with stage("feast materialize", echo):
        end = max(pd.read_parquet(p, columns=["event_timestamp"])["event_timestamp"].max()
                  for p in settings.features_dir.glob("*.parquet"))
        end = end.to_pydatetime() + pd.Timedelta(seconds=1)
        if use_feast or not is_sqlite_online(open_store(settings)):
            materialize(settings, end)
            echo("  Feast materialize")
        else:
            report = fast_materialize(settings, end)
            echo(f"  fast path: {sum(report.rows.values()):,} rows, {report.cells:,} values")


def push(settings: Settings, paths: list[Path], echo=print):
    """Raw event files -> lake -> the touched persons' online features (features.realtime)."""
    from features.realtime import push_files

    with stage("push", echo):
        report = push_files(settings, paths)
        echo(f"  read {report.rows_read:,}, kept {report.rows_kept:,}, duplicates {report.duplicates:,}, "
             f"quarantined {sum(report.quarantined.values()):,}; {len(report.persons)} persons refreshed "
             f"online, {report.unresolved_events} events without a known person ({report.seconds:.2f} s)")
    return report


def train(settings: Settings, which: str = "all", seed: int = 0, echo=print) -> list:
    from features.identity import load_resolved_events
    from training import TRAINERS, train_all
    from training.registry import configure_mlflow

    configure_mlflow(settings)
    events = load_resolved_events(settings.lake_dir, settings.identity_dir)
    if which == "all":
        with stage("train all", echo):
            results = train_all(settings, events, seed=seed)
    else:
        with stage(f"train {which}", echo):
            results = [TRAINERS[which](settings, events, seed=seed)]
    for r in results:
        echo(f"  {r.name} v{r.version}: {r.metric} {r.value:.4f} vs baseline {r.baseline_value:.4f}")
    return results


def build_all(settings: Settings, customers: int, days: int, seed: int, echo=print) -> list:
    """simulate -> ingest -> One-ID -> features -> Feast -> train/register: everything serving needs."""
    simulate(settings, customers, days, seed, echo)
    ingest(settings, echo=echo)
    resolve_identities(settings, echo)
    build_features(settings, echo)
    feast_apply(settings, echo)
    feast_materialize(settings, echo)
    return train(settings, "all", seed, echo)
