"""The MLflow edge: tracking set-up, logging a fitted model as a registered pyfunc, reading champions."""

from __future__ import annotations

import json
import tempfile
from contextvars import ContextVar
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from config.settings import Settings
from models.pyfunc import pyfunc_for, signature_for
from training.audit import AliasMove, AuditLog

EXPERIMENT = "nba"
CHAMPION = "champion"
# pinned explicitly so MLflow does not spawn a subprocess to infer requirements on every log
PIP_REQUIREMENTS = ["mlflow", "numpy", "pandas", "lightgbm", "scikit-learn"]
# the audit log of the settings whose MLflow was configured last (next to MLflow's own tracking URI state)
_AUDIT: ContextVar[AuditLog | None] = ContextVar("nba_registry_audit", default=None)
_AUDITS: dict[str, AuditLog] = {}
MAX_TAG_CHARS = 4_900


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
    _AUDIT.set(configured_audit(settings))
    return experiment_id


def configured_audit(settings: Settings) -> AuditLog:
    """The (cached) audit log of ``settings``: alias moves made here are recorded in it."""
    from training.audit import audit_url

    url = audit_url(settings)
    if url not in _AUDITS:
        _AUDITS[url] = AuditLog(url)
    return _AUDITS[url]


def log_registered_model(
    predictor, name: str, input_example: pd.DataFrame, tags: dict[str, object], *, alias: str = CHAMPION,
) -> str:
    """Log ``predictor`` as a pyfunc in the active run, register it as ``name``, tag it, move ``alias``.

    Returns the new version (str). The signature is inferred from the example and the in-process output.
    The version gets a model card (description + tags, from the run's params and metrics) and the alias
    move is recorded in the audit log of the configured settings (reason "trained").
    """
    audit = _AUDIT.get()
    if audit is None:
        raise RuntimeError("configure_mlflow(settings) must run first: alias moves are audited")
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
    card_tags, description = model_card(name, version, tags, _run_data(client))
    for key, value in card_tags.items():
        client.set_model_version_tag(name, version, key, str(value))
    client.update_model_version(name, version, description=description)
    try:
        previous = str(client.get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        previous = None
    client.set_registered_model_alias(name, alias, version)
    audit.record(AliasMove(model=name, alias=alias, from_version=previous, to_version=version, kind="trained",
                           reason="trained"))
    return version


def _run_data(client: MlflowClient):
    run = mlflow.active_run()
    return client.get_run(run.info.run_id).data if run is not None else None


def model_card(name: str, version: str, tags: dict[str, object], run_data=None) -> tuple[dict[str, str], str]:
    """Tags and description of a registered version: data window, features, metrics and baseline.

    ``tags`` come from the trainer (metric, value, baseline_value, feature_service, feature_names, window);
    the run's params name the baseline and its metrics are copied as one JSON tag.
    """
    params = dict(run_data.params) if run_data is not None else {}
    metrics = dict(run_data.metrics) if run_data is not None else {}
    card = {str(k): str(v) for k, v in tags.items()}
    if params.get("baseline"):
        card.setdefault("baseline", params["baseline"])
    if metrics:
        rounded = {k: round(float(v), 6) for k, v in sorted(metrics.items())}
        text = json.dumps(rounded)
        if len(text) > MAX_TAG_CHARS:  # MLflow caps a tag value at 5,000 characters: keep the headline
            text = json.dumps({k: v for k, v in rounded.items() if k.endswith(card.get("metric", "?"))})
        card.setdefault("metrics", text[:MAX_TAG_CHARS])
    try:
        n_features = len(json.loads(card.get("feature_names", "[]")))
    except ValueError:
        n_features = 0
    metric, value, base = card.get("metric", "?"), card.get("value", "?"), card.get("baseline_value", "?")
    description = (
        f"{name} v{version}: held-out {metric} {value} vs {base} for the baseline"
        + (f" ({card['baseline']})" if "baseline" in card else "") + ". "
        f"Data {card.get('data_start', '?')} .. {card.get('data_end', '?')}"
        + (f", split at {card['split_cutoff']}" if "split_cutoff" in card else "")
        + f". Inputs: {n_features} features of {card.get('feature_service', '?')}."
    )
    return card, description


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
