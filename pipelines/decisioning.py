"""Orchestration of the decisioning commands: `nba catalog check` and `nba decide-batch` (I/O only)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from config import Settings
from config.settings import CONFIG_DIR

__all__ = ["check_decision_config", "run_batch"]

POLICIES_FILE = CONFIG_DIR / "policies.yaml"
EXPERIMENTS_FILE = CONFIG_DIR / "experiments.yaml"
SEGMENTS_FILE = CONFIG_DIR / "segments.yaml"
ONLINE_CHUNK = 1_000


def check_decision_config(catalog_path: Path) -> tuple[list[str], str]:
    """Every error of the catalog, policies, experiments and segments files; and a one-line summary."""
    from serving.catalog import CatalogError, check_catalog, read_catalog_yaml
    from serving.experiments import ExperimentError, load_experiments
    from serving.policies import PolicyError, load_policies
    from serving.segments import SegmentError, load_segments

    errors: list[str] = []
    actions = ()
    try:
        actions, errors = check_catalog(read_catalog_yaml(catalog_path))
    except CatalogError as exc:
        errors = [str(exc)]
    segments = {}
    for loader, path, error in ((load_policies, POLICIES_FILE, PolicyError),
                                (load_experiments, EXPERIMENTS_FILE, ExperimentError),
                                (load_segments, SEGMENTS_FILE, SegmentError)):
        try:
            result = loader(path)
        except error as exc:
            errors.append(f"{path.name}: {exc}")
            continue
        if loader is load_segments:
            segments = result
    summary = (f"catalog ok: {len(actions)} actions ({catalog_path}); policies, experiments and "
               f"{len(segments)} segments valid")
    return errors, summary


def _online_frame(settings: Settings, person_ids: list[str]) -> pd.DataFrame:
    from features.store import online_features, open_store
    from serving.loader import DECISION_SERVICE

    store = open_store(settings)
    parts = []
    for start in range(0, len(person_ids), ONLINE_CHUNK):
        values = online_features(store, person_ids[start:start + ONLINE_CHUNK], DECISION_SERVICE)
        parts.append(pd.DataFrame(values).set_index("person_id"))
    return pd.concat(parts) if parts else pd.DataFrame()


def run_batch(settings: Settings, segment_name: str, channel: str, limit: int = 1, source: str = "offline"
              ) -> tuple[Path, int, int, float]:
    """Decide for a segment on a channel; returns (parquet path, members, rows, seconds)."""
    from tqdm import tqdm

    from features.schema import CHANNELS
    from serving.batch import latest_offline_features, run_segment_batch, write_batch
    from serving.catalog import load_catalog
    from serving.contact_history import SQLiteContactHistory
    from serving.decision_log import DecisionLog
    from serving.engine import DecisionEngine
    from serving.experiments import load_experiments
    from serving.loader import load_champions
    from serving.policies import load_policies
    from serving.segments import load_segments

    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {list(CHANNELS)}")
    if source not in ("offline", "online"):
        raise ValueError(f"source must be 'offline' or 'online', got {source!r}")
    segments = load_segments(SEGMENTS_FILE)
    if segment_name not in segments:
        raise ValueError(f"unknown segment {segment_name!r}; known: {sorted(segments)}")
    policies = load_policies(POLICIES_FILE)
    features = latest_offline_features(settings.features_dir)
    if source == "online":
        features = _online_frame(settings, [str(p) for p in features.index])
    history = SQLiteContactHistory(settings.decision_log, policies.outbound_channels)
    engine = DecisionEngine(
        catalog=load_catalog(settings.actions_file), lookup_person=lambda _t, _k: None,
        read_features=lambda _p: None, models=load_champions(settings), salt=b"batch-run-resolves-no-identifiers",
        policies=policies, experiments=load_experiments(EXPERIMENTS_FILE), contact_history=history,
    )
    # logged like /decide_batch: channel apps send feedback on these decisions, and caps count them
    decision_log = DecisionLog(settings.decision_log, contact_channels=policies.outbound_channels)

    def record(items: list[tuple]) -> None:
        try:
            decision_log.record_decisions(items)
        finally:
            history.written(d for d, _, _ in items)

    now = datetime.now(UTC)
    started = time.perf_counter()
    try:
        with tqdm(total=len(features), unit="person", desc=f"{segment_name} on {channel}") as bar:
            frame, members = run_segment_batch(engine, features, segments[segment_name], channel, limit, now,
                                               progress=bar.update, record=record)
            bar.update(bar.total - bar.n)
    finally:
        decision_log.close()
        history.close()
    seconds = time.perf_counter() - started
    path = write_batch(frame, settings.home / "batches", segment_name, channel, now)
    return path, members, len(frame), seconds
