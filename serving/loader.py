"""Builds a ready DecisionEngine from settings: champions from MLflow, identity map, Feast online store."""

from __future__ import annotations

import copy
import dataclasses
import logging

import mlflow
from mlflow import MlflowClient

from config import Settings
from features.identity import IdentityIndex, read_identity_map
from serving.catalog import load_catalog
from serving.decision_log import DecisionLog
from serving.engine import DecisionEngine, ModelSet
from serving.online import DECISION_SERVICE, FeastOnlineReader, open_online_reader

__all__ = [
    "DECISION_SERVICE",
    "SERVED_MODELS",
    "OnlineFeatureReader",
    "build_engine",
    "champion_versions",
    "load_champions",
    "load_model_set",
    "load_served",
    "make_engine",
    "served_versions",
    "with_models",
]

log = logging.getLogger(__name__)

SERVED_MODELS = ("churn", "propensity", "recommender", "budget_bandit")
OnlineFeatureReader = FeastOnlineReader  # the Feast SDK reader, kept under its first name


def _client(settings: Settings) -> MlflowClient:
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)


def _aliases(settings: Settings) -> dict[str, dict[str, str]]:
    """``{model: {alias: version}}`` of the served models, in one registry query: every replica's watcher
    asks every few seconds, and one look-up per model and alias was a round trip each to a remote
    tracking server (13 vs 9 ms of CPU per poll here with the SQLite registry)."""
    names = ", ".join(f"'{name}'" for name in SERVED_MODELS)
    found = _client(settings).search_registered_models(filter_string=f"name IN ({names})")
    return {m.name: {k: str(v) for k, v in (m.aliases or {}).items()} for m in found}


def champion_versions(settings: Settings, alias: str = "champion",
                      aliases: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """The registry version each served model's ``alias`` points at now; an error names models without."""
    aliases = _aliases(settings) if aliases is None else aliases
    missing = [name for name in SERVED_MODELS if alias not in aliases.get(name, {})]
    if missing:
        raise mlflow.exceptions.MlflowException(f"no {alias!r} alias on registered model(s) {missing}: "
                                                "train them (`nba train all`) or promote a version")
    return {name: aliases[name][alias] for name in SERVED_MODELS}


def load_model_set(settings: Settings, versions: dict[str, str], reuse: ModelSet | None = None) -> ModelSet:
    """Loads the given registry versions as pyfuncs and keeps their fast in-process predictors.

    Loading by version number (not alias) means an alias moving during the load cannot mix versions.
    Predictors of ``reuse`` whose version is unchanged are kept instead of reloaded.
    """
    _client(settings)
    current = {
        "churn": getattr(reuse, "churn", None), "propensity": getattr(reuse, "propensity", None),
        "recommender": getattr(reuse, "recommender", None), "budget_bandit": getattr(reuse, "bandit", None),
    }
    old_versions = dict(getattr(reuse, "versions", {}) or {})
    predictors = {}
    for name in SERVED_MODELS:
        version = versions[name]
        if old_versions.get(name) == version and current[name] is not None:
            predictors[name] = current[name]
            continue
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        predictors[name] = model.unwrap_python_model().predictor
        log.info("loaded %s version %s", name, version)
    return ModelSet(
        churn=predictors["churn"],
        propensity=predictors["propensity"],
        recommender=predictors["recommender"],
        bandit=predictors["budget_bandit"],
        versions=dict(versions),
    )


def served_versions(settings: Settings) -> dict[str, dict[str, str] | None]:
    """``{"champion": versions, "challenger": versions or None}``: what the service should be serving.

    The challenger set takes each model's ``challenger`` alias where it has one, else its champion; None
    when no model has one (the experiment then serves everyone the champion). One registry query.
    """
    aliases = _aliases(settings)
    champions = champion_versions(settings, aliases=aliases)
    if not any("challenger" in aliases[name] for name in SERVED_MODELS):
        return {"champion": champions, "challenger": None}
    return {"champion": champions,
            "challenger": {name: aliases[name].get("challenger", champions[name]) for name in SERVED_MODELS}}


def load_served(settings: Settings, wanted: dict, reuse: dict | None = None) -> dict[str, ModelSet | None]:
    """Loads champion and challenger sets; models shared between the sets (or with ``reuse``) load once."""
    reuse = reuse or {}
    champion = load_model_set(settings, wanted["champion"], reuse.get("champion"))
    challenger = None
    if wanted.get("challenger") is not None:
        challenger = load_model_set(settings, wanted["challenger"], reuse.get("challenger") or champion)
    return {"champion": champion, "challenger": challenger}


def load_champions(settings: Settings, alias: str = "champion") -> ModelSet:
    """Each served model's ``alias`` version, loaded as a pyfunc, kept as its fast in-process predictor."""
    return load_model_set(settings, champion_versions(settings, alias))


def make_engine(settings: Settings, models: ModelSet, read_features=None, *, challenger: ModelSet | None = None,
                contact_history=None) -> DecisionEngine:
    """The decision engine over ``models``; ``read_features`` defaults to the profile's fastest reader,
    ``contact_history`` to the engine's in-memory one (the service passes the decision log's view)."""
    catalog = load_catalog(settings.actions_file)
    identity = IdentityIndex(read_identity_map(settings.identity_dir))
    return DecisionEngine(
        catalog=catalog,
        lookup_person=identity.lookup,
        read_features=read_features if read_features is not None else open_online_reader(settings),
        models=models,
        salt=settings.id_salt(),
        default_limit=settings.serving.default_limit,
        challenger=challenger,
        contact_history=contact_history,
    )


def with_models(engine: DecisionEngine, models: ModelSet, challenger: ModelSet | None = None) -> DecisionEngine:
    """A new engine sharing everything with ``engine`` (history, volume ledger, generator) but the model
    sets: the hot-swap unit. Callers swap one reference, so a request in flight keeps the engine, and
    the model sets, it started with."""
    if dataclasses.is_dataclass(engine):
        return dataclasses.replace(engine, models=models, challenger=challenger)
    clone = copy.copy(engine)
    clone.models, clone.challenger = models, challenger
    return clone


def build_engine(settings: Settings, models: ModelSet | None = None) -> tuple[DecisionEngine, DecisionLog]:
    """The engine over the profile's online store (fast direct reader where possible) and the log."""
    engine = make_engine(settings, models if models is not None else load_champions(settings))
    return engine, DecisionLog(settings.decision_log)
