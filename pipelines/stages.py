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
    from simulator import WorldConfig, simulate, write_world

    with stage("simulate", echo):
        world = simulate(WorldConfig(customers=customers, days=days, seed=seed))
        write_world(world, settings.raw_dir, settings.truth_dir)
        echo(f"  {customers} customers, {days} days, {len(world.events):,} raw events")
    return {"events": len(world.events)}


def ingest(settings: Settings, sources: list[Path] | None = None, echo=print):
    from features.ingest import ingest as run_ingest

    sources = sources or sorted(settings.raw_dir.glob("*.parquet"))
    with stage("ingest", echo):
        report = run_ingest(sources, settings.lake_dir, settings.quarantine_dir, settings.id_salt())
        echo(
            f"  read {report.rows_read:,}, kept {report.rows_kept:,}, duplicates {report.duplicates:,}, "
            f"quarantined {sum(report.quarantined.values()):,} {dict(report.quarantined)}"
        )
    return report


def resolve_identities(settings: Settings, echo=print) -> pd.DataFrame:
    from features.identity import read_lake_events, resolve_identities, write_identity_map

    with stage("identity", echo):
        identity_map = resolve_identities(read_lake_events(settings.lake_dir))
        write_identity_map(identity_map, settings.identity_dir)
        echo(f"  {len(identity_map):,} identifiers -> {identity_map['person_id'].nunique():,} persons")
    return identity_map


def build_features(settings: Settings, echo=print) -> None:
    from features.engineering import build_feature_snapshots, snapshot_dates, write_feature_tables
    from features.identity import load_resolved_events

    with stage("features", echo):
        events = load_resolved_events(settings.lake_dir, settings.identity_dir)
        dates = snapshot_dates(events["ts"].min().normalize() + pd.Timedelta(days=28), events["ts"].max())
        frames = build_feature_snapshots(events, dates)
        write_feature_tables(frames, settings.features_dir)
        n = sum(len(f.columns) - 2 for f in frames.values())
        echo(f"  {len(frames)} feature views, {n} features, {len(dates)} snapshots")


def feast_apply(settings: Settings, echo=print) -> None:
    from features.store import apply

    with stage("feast apply", echo):
        apply(settings)


def feast_materialize(settings: Settings, echo=print) -> None:
    from features.store import materialize

    with stage("feast materialize", echo):
        end = max(pd.read_parquet(p, columns=["event_timestamp"])["event_timestamp"].max()
                  for p in settings.features_dir.glob("*.parquet"))
        materialize(settings, end.to_pydatetime() + pd.Timedelta(seconds=1))


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
