"""Integration: promotion gates, forced promotion, rollback and history against a real MLflow registry
(sqlite in tmp_path) and a real Feast registry; the audit log in SQLite and in the real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from config.settings import FEAST_REPO, ServingSettings, Settings, WorldSettings
from features.store import apply
from models import ChurnClassifier
from training.audit import AliasMove, AuditLog, alias_lineage
from training.common import training_run
from training.promotion import (
    PromotionRefused,
    RegistryPolicy,
    feast_service_features,
    history,
    metric_gate,
    promote,
    rollback,
    signature_gate,
)
from training.registry import log_registered_model

pytestmark = pytest.mark.integration
POLICY = RegistryPolicy(tolerance={"churn": 0.01})
SERVICE = "churn_v1"


@pytest.fixture(scope="module")
def template_home(tmp_path_factory):
    """A home whose MLflow database schema exists and whose Feast registry is applied (both slow to
    create); each test works on its own copy."""
    home = tmp_path_factory.mktemp("template") / "nba"
    settings = Settings(profile="embedded", home=home, feast_yaml=FEAST_REPO / "feature_store.yaml",
                        mlflow_tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
                        decision_log=home / "decisions.db", world=WorldSettings(customers=10, days=30, seed=0),
                        serving=ServingSettings(host="127.0.0.1", port=3000, default_limit=3, max_limit=20))
    (home / "mlflow").mkdir(parents=True)
    MlflowClient(settings.mlflow_tracking_uri).search_experiments()
    apply(settings)
    return home


@pytest.fixture
def registry(settings, template_home):
    """settings with the Feast registry applied and a churn champion v1 (AUC 0.80) from 'training'."""
    shutil.copytree(template_home, settings.home)
    features = feast_service_features(settings)
    columns = features(SERVICE)[:4]
    _register(settings, columns, value=0.80)
    return settings, features, columns


def _register(settings, columns, *, value, service=SERVICE, alias="champion") -> str:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, len(columns))), columns=columns)
    y = (X.iloc[:, 0] + rng.normal(0, 0.5, 300) > 0).astype(int)
    model = ChurnClassifier(n_estimators=5).fit(X, y)
    tags = {"metric": "auc", "value": f"{value:.6f}", "baseline_value": "0.700000", "feature_service": service,
            "feature_names": str(columns).replace("'", '"'), "data_start": "2026-01-01", "data_end": "2026-03-01"}
    with training_run(settings, "churn"):
        return log_registered_model(model, "churn", X.head(5), tags, alias=alias)


def _champion(name="churn") -> str:
    return str(MlflowClient().get_model_version_by_alias(name, "champion").version)


def test_training_records_a_trained_move_and_a_model_card(registry):
    settings, _, _ = registry
    [move] = history(settings, "churn")
    assert (move.kind, move.reason, move.from_version, move.to_version) == ("trained", "trained", None, "1")
    assert move.actor
    mv = MlflowClient().get_model_version("churn", "1")
    assert "held-out auc 0.800000 vs 0.700000 for the baseline" in mv.description and "churn_v1" in mv.description
    assert {"data_start", "data_end", "feature_names", "metric", "value", "baseline_value"} <= set(mv.tags)


def test_metric_gate_refuses_a_worse_version_and_force_is_recorded(registry, monkeypatch):
    settings, features, columns = registry
    _register(settings, columns, value=0.70, alias="challenger")
    with pytest.raises(PromotionRefused, match="metric gate failed: auc 0.7000 is worse"):
        promote(settings, "churn", "2", policy=POLICY, service_features=features)
    assert _champion() == "1"
    with pytest.raises(ValueError, match="reason"):
        promote(settings, "churn", "2", force=True, policy=POLICY, service_features=features)
    monkeypatch.setenv("NBA_USER", "ops-alice")
    done = promote(settings, "churn", "2", force=True, reason="hotfix for data bug", policy=POLICY,
                   service_features=features)
    assert _champion() == "2"
    last = history(settings, "churn")[-1]
    assert last == done.move
    assert (last.forced, last.actor, last.reason, last.from_version, last.to_version) == (
        True, "ops-alice", "hotfix for data bug", "1", "2")
    assert [g["gate"] for g in last.gates if not g["passed"]] == ["metric"]
    _register(settings, columns, value=0.695, alias="challenger")  # within tolerance of v2's 0.70
    done = promote(settings, "churn", "3", policy=POLICY, service_features=features)
    assert all(g.passed for g in done.gates) and not done.move.forced
    assert _champion() == "3" and done.move.reason == "all gates passed"


def test_signature_and_smoke_gates_refuse(registry):
    settings, features, columns = registry
    _register(settings, [*columns, "shoe_size"], value=0.9, alias="challenger")
    with pytest.raises(PromotionRefused, match=r"signature gate failed: signature columns \['shoe_size'\]"):
        promote(settings, "churn", "2", policy=POLICY, service_features=features)
    _register(settings, columns, value=0.9, service="churn_v9", alias="challenger")
    with pytest.raises(PromotionRefused, match="signature gate failed: feature service 'churn_v9' is not"):
        promote(settings, "churn", "3", policy=POLICY, service_features=features)
    assert _champion() == "1"
    _register(settings, columns, value=0.9, alias="challenger")
    artifacts = Path(settings.mlflow_dir / "artifacts")
    newest = max((p.parent for p in artifacts.rglob("MLmodel")), key=lambda p: p.stat().st_mtime)
    shutil.rmtree(newest / "artifacts")  # version 4's saved model files are gone
    with pytest.raises(PromotionRefused, match="smoke gate failed"):
        promote(settings, "churn", "4", policy=POLICY, service_features=features)
    assert _champion() == "1"


def test_rollback_restores_previous_champions_in_order(registry):
    settings, features, columns = registry
    _register(settings, columns, value=0.81)  # training makes v2 champion
    _register(settings, columns, value=0.82, alias="challenger")
    promote(settings, "churn", "3", policy=POLICY, service_features=features)
    assert _champion() == "3"
    assert rollback(settings, "churn").to_version == "2" and _champion() == "2"
    assert rollback(settings, "churn", reason="v2 also bad").to_version == "1" and _champion() == "1"
    with pytest.raises(LookupError, match="no previous champion"):
        rollback(settings, "churn")
    kinds = [(m.alias, m.kind, m.from_version, m.to_version) for m in history(settings, "churn")]
    assert kinds == [("champion", "trained", None, "1"), ("champion", "trained", "1", "2"),
                     ("challenger", "trained", None, "3"), ("champion", "promote", "2", "3"),
                     ("champion", "rollback", "3", "2"), ("champion", "rollback", "2", "1")]
    # an alias moved behind the product's back: rollback refuses rather than guess
    _register(settings, columns, value=0.83)
    MlflowClient().set_registered_model_alias("churn", "champion", "1")
    with pytest.raises(LookupError, match="moved outside the product"):
        rollback(settings, "churn")


def test_cli_promote_refuses_with_exit_1_then_history(registry, monkeypatch):
    from pipelines.cli import app

    settings, _, columns = registry
    _register(settings, columns, value=0.5, alias="challenger")
    monkeypatch.setenv("NBA_HOME", str(settings.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("NBA_USER", "ops-bob")
    runner = CliRunner()
    refused = runner.invoke(app, ["models", "promote", "churn", "2"])
    assert refused.exit_code == 1 and "metric gate failed" in refused.output
    forced = runner.invoke(app, ["models", "promote", "churn", "2", "--force", "--reason", "ab test"])
    assert forced.exit_code == 0, forced.output
    assert "v1 -> v2 (forced) by ops-bob: ab test" in forced.output
    rolled = runner.invoke(app, ["models", "rollback", "churn"])
    assert rolled.exit_code == 0 and "v2 -> v1" in rolled.output
    shown = runner.invoke(app, ["models", "history", "churn"])
    lines = shown.output.strip().splitlines()
    # trained champion v1, trained challenger v2, forced promotion, rollback
    assert len(lines) == 4 and "FORCED ab test" in lines[2] and "rollback" in lines[3] and "ops-bob" in lines[3]


# -- pure parts -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("candidate", "incumbent", "passed", "detail"),
    [
        ({"metric": "auc", "value": "0.7"}, None, True, "no current holder"),
        ({"metric": "auc", "value": "0.7"}, {"metric": "auc", "value": "0.705"}, True, "tolerance"),
        ({"metric": "auc", "value": "0.7"}, {"metric": "auc", "value": "0.72"}, False, "worse"),
        ({"metric": "auc", "value": "0.7"}, {"metric": "recall_at_10", "value": "0.1"}, False, "cannot be compared"),
        ({}, None, False, "no held-out metric"),
    ],
)
def test_metric_gate_table(candidate, incumbent, passed, detail):
    result = metric_gate(candidate, incumbent, 0.01, "1")
    assert result.passed is passed and detail in result.detail


def test_signature_gate_allows_request_columns_and_input_free_models():
    assert signature_gate(["a", "action_id"], "s", ["a"], ("action_id",)).passed
    assert not signature_gate(["a", "b"], "s", ["a"]).passed
    assert signature_gate(None, None, None).passed
    assert not signature_gate(["a"], None, None).passed


def test_lineage_replays_promotions_and_rollbacks():
    def m(kind, to):
        return AliasMove(model="x", alias="champion", from_version=None, to_version=to, kind=kind, reason="r")
    assert alias_lineage([m("trained", "1"), m("promote", "2"), m("rollback", "1"), m("promote", "3")]) == ["1", "3"]
    with pytest.raises(ValueError, match="kind"):
        m("moved", "1")


def test_audit_log_on_the_real_postgresql():
    psycopg = pytest.importorskip("psycopg")
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 unreachable: {exc}")
    db = f"nba_audit_test_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE DATABASE "{db}"')
    try:
        from training.audit import audit_url

        class _S:  # the only field audit_url reads besides home
            mlflow_tracking_uri = f"postgresql://postgres@127.0.0.1:5432/{db}"
            home = Path(os.devnull)

        log = AuditLog(audit_url(_S))
        log.record(AliasMove(model="churn", alias="champion", from_version=None, to_version="1", kind="trained",
                             reason="trained", actor="ci"))
        log.record(AliasMove(model="churn", alias="champion", from_version="1", to_version="2", kind="promote",
                             reason="better", actor="ci", forced=True, gates=({"gate": "metric", "passed": False,
                                                                                "detail": "d"},)))
        moves = log.history("churn")
        assert [(m.to_version, m.forced) for m in moves] == [("1", False), ("2", True)]
        assert moves[1].gates[0]["gate"] == "metric" and moves[0].at.tzinfo is not None
        assert log.history("other") == []
        log.dispose()
    finally:
        conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
        conn.close()


def test_model_card_and_audit_location(settings):
    from training.audit import audit_url
    from training.registry import model_card

    tags = {"metric": "auc", "value": "0.81", "baseline_value": "0.70", "feature_service": "churn_v1",
            "feature_names": '["a", "b"]', "data_start": "2026-01-01", "data_end": "2026-04-01",
            "split_cutoff": "2026-03-15"}
    card, description = model_card("churn", "3", tags)
    assert card == tags
    assert description == ("churn v3: held-out auc 0.81 vs 0.70 for the baseline. Data 2026-01-01 .. 2026-04-01, "
                           "split at 2026-03-15. Inputs: 2 features of churn_v1.")
    assert audit_url(settings) == f"sqlite:///{settings.home / 'registry_audit.db'}"
    pg = type("S", (), {"mlflow_tracking_uri": "postgresql://postgres@127.0.0.1:5432/nba_mlflow", "home": None})
    assert audit_url(pg) == "postgresql+psycopg://postgres@127.0.0.1:5432/nba_mlflow"
