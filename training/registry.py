"""The MLflow edge: tracking set-up, logging a fitted model as a registered pyfunc, reading champions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from config.settings import Settings
from models.pyfunc import pyfunc_for, signature_for

EXPERIMENT = "nba"
CHAMPION = "champion"
# pinned explicitly so MLflow does not spawn a subprocess to infer requirements on every log
PIP_REQUIREMENTS = ["mlflow", "numpy", "pandas", "lightgbm", "scikit-learn"]


def configure_mlflow(settings: Settings) -> str:
    """Point MLflow at ``settings.mlflow_tracking_uri`` and the ``nba`` experiment; return its id.

    Without a tracking server (sqlite/postgresql/file URIs), artifacts go under
    ``settings.mlflow_dir/artifacts``; an http(s) server keeps its own artifact store.
    """
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        location = None
        if not uri.startswith(("http://", "https://", "databricks")):
            artifacts = settings.mlflow_dir / "artifacts"
            artifacts.mkdir(parents=True, exist_ok=True)
            location = artifacts.resolve().as_uri()
        experiment_id = client.create_experiment(EXPERIMENT, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def log_registered_model(
    predictor, name: str, input_example: pd.DataFrame, tags: dict[str, object], *, alias: str = CHAMPION,
) -> str:
    """Log ``predictor`` as a pyfunc in the active run, register it as ``name``, tag it, move ``alias``.

    Returns the new version (str). The signature is inferred from the example and the in-process output.
    """
    with tempfile.TemporaryDirectory(prefix="nba-model-") as workdir:
        wrapper, artifacts = pyfunc_for(predictor, workdir)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=wrapper,
            artifacts=artifacts,
            signature=signature_for(wrapper, input_example),
            input_example=input_example,
            registered_model_name=name,
            pip_requirements=PIP_REQUIREMENTS,
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))
    client.set_registered_model_alias(name, alias, version)
    return version


def list_models(settings: Settings) -> list[dict]:
    """One row per registered model that has a champion: name, version, aliases, metric, values."""
    configure_mlflow(settings)
    client = MlflowClient()
    rows = []
    for registered in sorted(client.search_registered_models(), key=lambda m: m.name):
        try:
            mv = client.get_model_version_by_alias(registered.name, CHAMPION)
        except mlflow.exceptions.MlflowException:
            continue
        tags = mv.tags or {}
        rows.append({
            "name": registered.name,
            "version": str(mv.version),
            "aliases": sorted(mv.aliases or []),
            "metric": tags.get("metric"),
            "value": _float(tags.get("value")),
            "baseline_value": _float(tags.get("baseline_value")),
        })
    return rows


def load_champion(settings: Settings, name: str):
    """Load ``models:/<name>@champion`` as a pyfunc; returns (model, version). LookupError if none."""
    configure_mlflow(settings)
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException as exc:
        raise LookupError(f"no {CHAMPION} version registered for model {name!r}") from exc
    model = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
    return model, str(mv.version)


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
