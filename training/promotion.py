"""Promotion gates and alias moves for ops: promote, roll back, history (every move audited).

A version becomes ``champion`` (served) or ``challenger`` (shadow) only after three gates pass:

1. **signature**: every input column of the version's signature is a feature of the feature service it was
   trained on (its ``feature_service`` tag) or a request-time column configured for the model;
2. **metric**: its held-out metric (tag ``value``) is not worse than the current holder's beyond the
   model's configured tolerance (``config/registry.yaml``);
3. **smoke**: the version loads as a standard pyfunc and predicts its logged input example.

A failed gate refuses (:class:`PromotionRefused`); ``force=True`` with a reason overrides and the
override, with the gate results, is written to the audit log (:mod:`training.audit`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from config.settings import CONFIG_DIR, Settings
from training.audit import AliasMove, AuditLog, alias_lineage, current_actor
from training.registry import CHAMPION, configure_mlflow

REGISTRY_FILE = CONFIG_DIR / "registry.yaml"
ALIASES = ("champion", "challenger")
LAKE_PREFIX = "lake:"

ServiceFeatures = Callable[[str], list[str]]


class PromotionRefused(RuntimeError):
    """A gate failed and the promotion was not forced; ``failed`` holds the failing gate results."""

    def __init__(self, name: str, version: str, failed: list[GateResult]) -> None:
        self.failed = failed
        reasons = "; ".join(f"{g.gate} gate failed: {g.detail}" for g in failed)
        super().__init__(f"refusing to promote {name} v{version}: {reasons} "
                         "(use --force --reason TEXT to override; the override is recorded)")


@dataclass(frozen=True)
class RegistryPolicy:
    """Per-model metric tolerances and request-time input columns (``config/registry.yaml``)."""

    tolerance: dict[str, float] = field(default_factory=dict)
    default_tolerance: float = 0.0
    request_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in {**self.tolerance, "default_tolerance": self.default_tolerance}.items():
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"tolerance for {name!r} must be a finite number >= 0, got {value!r}")

    def tolerance_for(self, name: str) -> float:
        return float(self.tolerance.get(name, self.default_tolerance))


def load_registry_policy(path: str | Path = REGISTRY_FILE) -> RegistryPolicy:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read registry policy {path}: {exc}") from exc
    try:
        return RegistryPolicy(
            tolerance={str(k): float(v) for k, v in (raw.get("tolerance") or {}).items()},
            default_tolerance=float(raw.get("default_tolerance", 0.0)),
            request_columns={str(k): tuple(map(str, v)) for k, v in (raw.get("request_columns") or {}).items()},
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid registry policy {path}: {exc}") from exc


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    detail: str


# -- the gates (pure, except smoke which loads the model) --------------------------------------------
def signature_gate(input_names: list[str] | None, service: str | None, service_columns: list[str] | None,
                   request_columns: tuple[str, ...] = ()) -> GateResult:
    """Pass when every signature input is a service feature or a request-time column."""
    if input_names is None:
        return GateResult("signature", True, "no input signature: the model accepts any frame")
    if not service:
        return GateResult("signature", False, "the version has no feature_service tag")
    if service_columns is None:
        return GateResult("signature", False, f"feature service {service!r} is not in the feature store")
    extra = [c for c in input_names if c not in set(service_columns) | set(request_columns)]
    if extra:
        return GateResult("signature", False, f"signature columns {extra} are not in feature service {service!r}")
    return GateResult("signature", True, f"{len(input_names)} inputs match feature service {service!r}")


def metric_gate(candidate: dict[str, str], incumbent: dict[str, str] | None, tolerance: float,
                incumbent_version: str | None = None) -> GateResult:
    """Compare version tags ``metric``/``value``: candidate >= incumbent - tolerance (higher is better)."""
    metric, value = candidate.get("metric"), _float(candidate.get("value"))
    if metric is None or value is None:
        return GateResult("metric", False, "the version has no held-out metric tags (metric, value)")
    if incumbent is None:
        return GateResult("metric", True, f"no current holder to compare with; {metric}={value:.4f}")
    if incumbent.get("metric") != metric:
        return GateResult("metric", False, f"{metric} cannot be compared with the current v{incumbent_version}'s "
                                           f"{incumbent.get('metric')}")
    best = _float(incumbent.get("value"))
    if best is None:
        return GateResult("metric", True, f"current v{incumbent_version} has no value; {metric}={value:.4f}")
    if value < best - tolerance:
        return GateResult("metric", False, f"{metric} {value:.4f} is worse than current v{incumbent_version}'s "
                                           f"{best:.4f} beyond tolerance {tolerance:g}")
    return GateResult("metric", True, f"{metric} {value:.4f} vs current v{incumbent_version} {best:.4f} "
                                      f"(tolerance {tolerance:g})")


def smoke_gate(model_uri: str) -> GateResult:
    """Load ``model_uri`` as a standard pyfunc and predict its logged input example."""
    try:
        model = mlflow.pyfunc.load_model(model_uri)
        example = mlflow.models.Model.load(model_uri).load_input_example(model_uri)
        if example is None:
            return GateResult("smoke", False, "the version has no logged input example")
        output = model.predict(example)
        rows = len(output)
        if rows == 0:
            return GateResult("smoke", False, "prediction on the input example returned no rows")
        numbers = pd.DataFrame(output).select_dtypes("number").to_numpy(dtype=float)
        if numbers.size and not np.isfinite(numbers).all():
            return GateResult("smoke", False, "prediction on the input example is not finite")
    except Exception as exc:  # noqa: BLE001 - any failure to load or predict is the gate's finding
        return GateResult("smoke", False, f"{type(exc).__name__}: {exc}"[:500])
    return GateResult("smoke", True, f"predicted {rows} rows on {len(example)} sample rows")


# -- the registry edge --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Promotion:
    """What a promotion did: the move written to the audit log and the gate results."""

    move: AliasMove
    gates: list[GateResult]


def feast_service_features(settings: Settings) -> ServiceFeatures:
    """Feature names of a Feast feature service (None if unknown), via the profile's store."""
    from features.store import feature_names, open_store

    store = None

    def lookup(service: str) -> list[str] | None:
        nonlocal store
        store = store or open_store(settings)
        try:
            return feature_names(store, service)
        except Exception:  # noqa: BLE001 - Feast raises its own not-found types per registry backend
            return None

    return lookup


def run_gates(settings: Settings, name: str, version: str, alias: str, *, policy: RegistryPolicy,
              service_features: ServiceFeatures | None = None) -> list[GateResult]:
    client = MlflowClient()
    mv = _version(client, name, version)
    tags = dict(mv.tags or {})
    service = tags.get("feature_service")
    request = policy.request_columns.get(name, ())
    if service and service.startswith(LAKE_PREFIX):
        columns: list[str] | None = []
    elif service:
        columns = (service_features or feast_service_features(settings))(service)
    else:
        columns = None
    incumbent = _holder(client, name, alias)
    incumbent_tags = dict(incumbent.tags or {}) if incumbent is not None else None
    return [
        signature_gate(_input_names(name, version), service, columns, request),
        metric_gate(tags, incumbent_tags, policy.tolerance_for(name),
                    str(incumbent.version) if incumbent is not None else None),
        smoke_gate(f"models:/{name}/{version}"),
    ]


def promote(settings: Settings, name: str, version: str, *, alias: str = CHAMPION, force: bool = False,
            reason: str | None = None, policy: RegistryPolicy | None = None,
            service_features: ServiceFeatures | None = None, audit: AuditLog | None = None,
            actor: str | None = None) -> Promotion:
    """Run the gates, then move ``alias`` of ``name`` to ``version`` and record the move.

    Raises :class:`PromotionRefused` if a gate fails and ``force`` is False; ``force`` needs a ``reason``.
    """
    if alias not in ALIASES:
        raise ValueError(f"alias must be one of {ALIASES}, got {alias!r}")
    if force and not (reason or "").strip():
        raise ValueError("--force needs --reason TEXT: an override must say why")
    configure_mlflow(settings)
    version = str(version)
    gates = run_gates(settings, name, version, alias, policy=policy or load_registry_policy(),
                      service_features=service_features)
    failed = [g for g in gates if not g.passed]
    if failed and not force:
        raise PromotionRefused(name, version, failed)
    default = "all gates passed" if not failed else ""
    move = _move(settings, name, alias, version, kind="promote", reason=(reason or "").strip() or default,
                 forced=bool(failed), gates=gates, audit=audit, actor=actor)
    return Promotion(move=move, gates=gates)


def rollback(settings: Settings, name: str, *, alias: str = CHAMPION, reason: str | None = None,
             audit: AuditLog | None = None, actor: str | None = None) -> AliasMove:
    """Move ``alias`` back to the version that held it before the current one (from the audit log)."""
    configure_mlflow(settings)
    audit = audit or AuditLog.for_settings(settings)
    lineage = alias_lineage(audit.history(name, alias))
    if len(lineage) < 2:
        raise LookupError(f"no previous {alias} of {name!r} in the audit log to roll back to")
    current = _holder(MlflowClient(), name, alias)
    if current is None or str(current.version) != lineage[-1]:
        found = "none" if current is None else f"v{current.version}"
        raise LookupError(f"the registry's {alias} of {name!r} is {found} but the audit log says v{lineage[-1]}: "
                          "the alias was moved outside the product; promote explicitly instead")
    return _move(settings, name, alias, lineage[-2], kind="rollback",
                 reason=(reason or "").strip() or f"rollback from v{lineage[-1]}", audit=audit, actor=actor)


def history(settings: Settings, name: str, audit: AuditLog | None = None) -> list[AliasMove]:
    """Every recorded alias move of ``name``, oldest first."""
    return (audit or AuditLog.for_settings(settings)).history(name)


def _move(settings: Settings, name: str, alias: str, version: str, *, kind: str, reason: str,
          forced: bool = False, gates: list[GateResult] = (), audit: AuditLog | None = None,
          actor: str | None = None) -> AliasMove:
    client = MlflowClient()
    _version(client, name, version)
    previous = _holder(client, name, alias)
    move = AliasMove(model=name, alias=alias, from_version=str(previous.version) if previous else None,
                     to_version=version, kind=kind, reason=reason, actor=actor or current_actor(),
                     forced=forced, gates=tuple(asdict(g) for g in gates))
    client.set_registered_model_alias(name, alias, version)
    (audit or AuditLog.for_settings(settings)).record(move)
    return move


def _version(client: MlflowClient, name: str, version: str):
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise LookupError(f"model {name!r} has no version {version!r}") from exc


def _holder(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _input_names(name: str, version: str) -> list[str] | None:
    info = mlflow.models.get_model_info(f"models:/{name}/{version}")
    schema = info.signature.inputs if info.signature is not None else None
    return None if schema is None else list(schema.input_names())


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def moves_as_json(moves: list[AliasMove]) -> str:
    return json.dumps([{**asdict(m), "at": m.at.isoformat(), "gates": list(m.gates)} for m in moves], indent=2)


__all__ = [
    "ALIASES",
    "GateResult",
    "Promotion",
    "PromotionRefused",
    "RegistryPolicy",
    "history",
    "load_registry_policy",
    "metric_gate",
    "moves_as_json",
    "promote",
    "rollback",
    "run_gates",
    "signature_gate",
    "smoke_gate",
]
