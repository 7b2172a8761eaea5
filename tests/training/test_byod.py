"""Bring your own data: `nba train churn --data FILE --target COL` against a real MLflow registry (tmp)."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from training.byod import DataError, prepare_table, train_byod

AWKWARD = ["spend 30d (€)", "visits%", "niveau é", "会员 等级", "a b", "a_b", "a%b", "{json}:\"q\"", "customer id"]


def _awkward_table(n: int = 900, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spend, visits = rng.gamma(2.0, 50.0, n), rng.normal(size=n)
    tier = rng.choice(["金卡", "silver", "bronze"], n)
    logit = -0.02 * spend + 1.5 * visits + np.where(tier == "金卡", -1.5, 0.0) + 1.5
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    table = pd.DataFrame({
        AWKWARD[0]: spend, AWKWARD[1]: np.where(rng.random(n) < 0.15, np.nan, visits), AWKWARD[2]: tier,
        AWKWARD[3]: np.where(rng.random(n) < 0.1, None, tier), AWKWARD[4]: rng.normal(size=n),
        AWKWARD[5]: rng.normal(size=n), AWKWARD[6]: rng.normal(size=n), AWKWARD[7]: rng.integers(0, 3, n),
        AWKWARD[8]: [f"cust-{i:05d}" for i in range(n)], "churned?": np.where(churned, "yes", "no"),
    })
    table.loc[::37, "churned?"] = None  # unlabelled rows are dropped
    return table


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("NBA_HOME", str(tmp_path / "nba"))
    monkeypatch.setenv("NBA_ID_SALT", "test-salt")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_cli_trains_on_awkward_column_names_and_registers_under_byod(home):
    path = home / "customers.csv"
    _awkward_table().to_csv(path, index=False)
    result = CliRunner().invoke(app, ["train", "churn", "--data", str(path), "--target", "churned?",
                                      "--trials", "4", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["name"] == "churn_byod" and out["positive"] == "yes"
    assert out["auc"] > 0.75 and out["baseline_auc"] > 0.6
    assert out["features"] == AWKWARD[:8]
    assert out["dropped_columns"] == {"customer id": "identifier-like text (mostly distinct values)"}
    assert out["split"] == "stratified random" and out["n_test"] + out["n_train"] == out["n_rows"]
    # the registered model takes the caller's column names, as a standard MLflow pyfunc
    model = mlflow.pyfunc.load_model(f"models:/churn_byod/{out['version']}")
    table = pd.read_csv(path).head(20)
    predictor = model.unwrap_python_model().predictor
    scores = predictor.predict_proba(table[AWKWARD[:8]])
    assert scores.shape == (20,) and ((scores > 0) & (scores < 1)).all()
    run = mlflow.get_run(out["run_id"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(out["run_id"])}
    assert {"churn_byod_roc.png", "churn_byod_calibration.png", "churn_byod_lift_gain.png", "heldout.parquet",
            "byod_columns.json"} <= artifacts
    assert {"brier", "baseline_brier", "ece", "baseline_ece"} <= set(run.data.metrics)


@pytest.mark.parametrize("content,args,message", [
    ("a,b\n1,2\n3,4\n", ["--target", "nope"], "--target 'nope': no such column"),
    ("a,y\n1,1\n2,1\n3,1\n", ["--target", "y"], "constant"),
    ("", ["--target", "y"], "empty"),
    (b"PAR1\x00\x01garbage", ["--target", "y"], "cannot read"),
    ("a,y\n1,1\n2,0\n3,1\n", ["--target", "y", "--positive", "7"], "--positive '7' does not occur"),
    ("a,y\n1,x\n2,y\n3,z\n", ["--target", "y"], "--positive"),
])
def test_cli_bad_tables_exit_2_naming_the_problem(home, content, args, message):
    path = home / ("t.parquet" if isinstance(content, bytes) else "t.csv")
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = CliRunner().invoke(app, ["train", "churn", "--data", str(path), *args, "--json"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_missing_file_and_register_as_served_name_are_refused(home):
    result = CliRunner().invoke(app, ["train", "propensity", "--data", str(home / "none.csv"), "--target", "y"])
    assert result.exit_code == 2 and "no such file" in result.stderr
    path = home / "t.csv"
    _awkward_table(100).to_csv(path, index=False)
    result = CliRunner().invoke(app, ["train", "churn", "--data", str(path), "--target", "churned?",
                                      "--register-as", "churn"])
    assert result.exit_code == 2 and "replace the served churn model" in result.stderr


def test_prepare_table_infers_types():
    frame = pd.DataFrame({"num_as_text": ["1", "2", None, "4"] * 5, "flag": [True, False] * 10,
                          "when": pd.date_range("2026-01-01", periods=20), "y": [0, 1] * 10})
    data, features, positive, dropped = prepare_table(frame, "y")
    assert features == ["num_as_text", "flag"] and positive == "1"
    assert pd.api.types.is_float_dtype(data["num_as_text"]) and "when" in dropped
    with pytest.raises(DataError, match="only 2 rows in the smaller class"):
        prepare_table(pd.DataFrame({"a": range(10), "y": [1, 1] + [0] * 8}), "y")


def test_breast_cancer_from_sklearn_wheel(home):
    """A real public dataset that ships inside scikit-learn (no download): malignant = 0 is the positive."""
    from sklearn.datasets import load_breast_cancer

    from config import load_settings

    frame = load_breast_cancer(as_frame=True).frame
    path = home / "breast_cancer.parquet"
    frame.to_parquet(path)
    result = train_byod(load_settings(), path, kind="propensity", target="target", positive="0",
                        register_as="breast_cancer", n_trials=4)
    assert result.name == "breast_cancer" and result.positive == "0"
    assert result.auc > 0.95 and result.baseline_auc > 0.95
    assert abs(result.positive_rate - 212 / 569) < 1e-9
