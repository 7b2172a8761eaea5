"""The Feast adapter every other stage goes through (training: historical, serving: online).

The profile's ``feature_store.yaml`` says which infrastructure to use; for the embedded profile the
registry and SQLite online store are re-pointed under ``settings.feast_dir`` so any NBA_HOME (a test's
tmp folder, a demo) is self-contained. The declarative objects of ``features/repo`` are imported with
NBA_HOME set, so their file sources point at ``settings.features_dir``.
"""

from __future__ import annotations

import importlib
import os
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import yaml

from config.settings import FEAST_REPO, Settings
from features.engineering import VIEW_FEATURES

if TYPE_CHECKING:
    from feast import FeatureStore

REPO_MODULES: tuple[str, ...] = ("entities", "sources", "views", "services")
DEFAULT_MATERIALIZE_LOOKBACK = timedelta(days=400)


def _repo_config(settings: Settings):
    from feast.repo_config import RepoConfig

    raw = yaml.safe_load(os.path.expandvars(settings.feast_yaml.read_text()))
    registry = raw.get("registry")
    if isinstance(registry, str) or (isinstance(registry, dict) and registry.get("registry_type", "file") == "file"):
        raw["registry"] = str(settings.feast_dir / "registry.db")
    online = raw.get("online_store")
    if isinstance(online, dict) and online.get("type") == "sqlite":
        raw["online_store"] = {**online, "path": str(settings.feast_dir / "online.db")}
    config = RepoConfig(**raw)
    config.repo_path = FEAST_REPO
    return config


def open_store(settings: Settings) -> FeatureStore:
    """A FeatureStore for ``settings``' profile (embedded paths re-pointed under ``settings.feast_dir``)."""
    from feast import FeatureStore

    os.environ["NBA_HOME"] = str(settings.home)
    config = _repo_config(settings)
    if config.online_config and getattr(config.online_store, "type", None) == "sqlite":
        settings.feast_dir.mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(FEAST_REPO), config=config)


def repo_objects(settings: Settings) -> list:
    """The Feast objects declared in ``features/repo``, imported afresh with NBA_HOME = settings.home.

    The repo modules import each other by top-level name, as ``feast apply`` does (it puts the repo folder
    on ``sys.path``); re-importing keeps file source paths in step with the current NBA_HOME.
    """
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    os.environ["NBA_HOME"] = str(settings.home)
    if str(FEAST_REPO) not in sys.path:
        sys.path.insert(0, str(FEAST_REPO))
    for name in REPO_MODULES:
        sys.modules.pop(name, None)
    objects: list = []
    for name in REPO_MODULES:
        module = importlib.import_module(name)
        for attr in sorted(vars(module)):
            obj = getattr(module, attr)
            if isinstance(obj, Entity | DataSource | FeatureView | FeatureService) and not any(
                obj is seen for seen in objects
            ):
                objects.append(obj)
    return objects


def apply(settings: Settings) -> FeatureStore:
    """Register the repo's entity, sources, views and services (what ``feast apply`` does)."""
    store = open_store(settings)
    store.apply(repo_objects(settings))
    return store


def materialize(settings: Settings, end: datetime, start: datetime | None = None) -> FeatureStore:
    """Load the latest snapshot per person with ``event_timestamp <= end`` into the online store.

    ``start`` defaults to 400 days (the views' TTL) before ``end``.
    """
    end = pd.Timestamp(end)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    begin = end - DEFAULT_MATERIALIZE_LOOKBACK if start is None else pd.Timestamp(start)
    begin = begin.tz_localize("UTC") if begin.tzinfo is None else begin.tz_convert("UTC")
    store = open_store(settings)
    store.materialize(start_date=begin.to_pydatetime(), end_date=end.to_pydatetime())
    return store


def historical_features(settings: Settings, entity_df: pd.DataFrame, service: str) -> pd.DataFrame:
    """Point-in-time join: for each (person_id, event_timestamp) row the latest snapshot at or before it.

    Extra columns of ``entity_df`` (labels) pass through; rows come back in ``entity_df`` order, and a row
    with no snapshot at or before its timestamp keeps missing (NaN) features.
    """
    missing = {"person_id", "event_timestamp"} - set(entity_df.columns)
    if missing:
        raise ValueError(f"entity_df must have columns person_id, event_timestamp; missing {sorted(missing)}")
    store = open_store(settings)
    frame = entity_df.copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["_entity_row"] = range(len(frame))
    feature_service = store.get_feature_service(service)
    names = _ordered_names(feature_service)
    job = store.get_historical_features(entity_df=frame, features=feature_service)
    found = job.to_df()[["_entity_row", *names]]
    # Feast's file store drops entity rows whose person only has snapshots after the row's timestamp;
    # put them back with missing features so no training row disappears silently.
    result = frame.merge(found, on="_entity_row", how="left", validate="one_to_one")
    return result.drop(columns="_entity_row")


def online_features(store: FeatureStore, person_ids: list[str], service: str) -> dict[str, list]:
    """Latest materialized features per person: ``{"person_id": [...], feature: [...]}`` (None if unknown)."""
    response = store.get_online_features(
        features=store.get_feature_service(service, allow_cache=True),
        entity_rows=[{"person_id": p} for p in person_ids],
    )
    return response.to_dict()


def _ordered_names(feature_service) -> list[str]:
    """Service view order, then engineering order within a view (the registry does not keep field order)."""
    names: list[str] = []
    for projection in feature_service.feature_view_projections:
        order = {name: i for i, name in enumerate(VIEW_FEATURES.get(projection.name, {}))}
        fields = sorted((f.name for f in projection.features), key=lambda n: (order.get(n, len(order)), n))
        names.extend(fields)
    return names


def feature_names(store: FeatureStore, service: str) -> list[str]:
    """Feature names of a feature service in a stable order: the service's views, and within a view the
    order of :data:`features.engineering.VIEW_FEATURES`."""
    return _ordered_names(store.get_feature_service(service, allow_cache=True))
