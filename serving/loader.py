"""Builds a ready DecisionEngine from settings: champions from MLflow, identity map, Feast online store."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient

from config import Settings
from features.identity import IdentityIndex, read_identity_map
from features.store import online_features, open_store
from serving.catalog import load_catalog
from serving.decision_log import DecisionLog
from serving.engine import DecisionEngine, ModelSet

log = logging.getLogger(__name__)

SERVED_MODELS = ("churn", "propensity", "recommender", "budget_bandit")
DECISION_SERVICE = "decision_v1"


def load_champions(settings: Settings, alias: str = "champion") -> ModelSet:
    """Loads each model's ``alias`` version as a standard pyfunc, then keeps its fast in-process predictor."""
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient()
    predictors, versions = {}, {}
    for name in SERVED_MODELS:
        version = client.get_model_version_by_alias(name, alias)
        model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
        predictors[name] = model.unwrap_python_model().predictor
        versions[name] = str(version.version)
        log.info("loaded %s version %s (%s)", name, version.version, alias)
    return ModelSet(
        churn=predictors["churn"],
        propensity=predictors["propensity"],
        recommender=predictors["recommender"],
        bandit=predictors["budget_bandit"],
        versions=versions,
    )


@dataclass
class OnlineFeatureReader:
    """One person's decision features from the Feast online store; None when the store has no row."""

    store: object
    service: str = DECISION_SERVICE

    def __call__(self, person_id: str):
        values = online_features(self.store, [person_id], self.service)
        row = {k: v[0] for k, v in values.items() if k != "person_id"}
        if all(v is None for v in row.values()):
            return None
        return row


def build_engine(settings: Settings) -> tuple[DecisionEngine, DecisionLog]:
    catalog = load_catalog(settings.actions_file)
    identity = IdentityIndex(read_identity_map(settings.identity_dir))
    engine = DecisionEngine(
        catalog=catalog,
        lookup_person=identity.lookup,
        read_features=OnlineFeatureReader(open_store(settings)),
        models=load_champions(settings),
        salt=settings.id_salt(),
        default_limit=settings.serving.default_limit,
    )
    return engine, DecisionLog(settings.decision_log)
