"""Evaluation against the simulator's ground truth, and the `nba models report` rows.

Why here and not in the trainers: the product's training pipeline never reads truth (a real customer has
none). Each churn/propensity run logs its held-out rows (keys, label, model score, baseline score) as the
artifact ``heldout.parquet``; this module, run on demand, joins those rows with ``settings.truth_dir``
when it exists and says how close the model comes to the best possible ranking (the oracle AUC of the
true probabilities on the same rows and labels).

Truth persons are matched to product persons through the identity map: truth identifiers are keyed with
:func:`features.privacy.key_identifier` under the install's salt, joined on (id_type, id_key), and each
product person takes the truth person owning most of its identifiers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from config.settings import Settings

__all__ = [
    "HELDOUT_ARTIFACT",
    "churn_oracle",
    "models_report",
    "oracle_churn_probability",
    "propensity_oracle",
    "truth_person_map",
]

HELDOUT_ARTIFACT = "heldout.parquet"
IDENTITY_FILE = "identity_map.parquet"  # features.identity.IDENTITY_FILE
CHURN_HORIZON_DAYS = 30.0


def _auc(y, s) -> float | None:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if len(y) == 0 or len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, s))


def truth_person_map(settings: Settings) -> pd.DataFrame:
    """(person_id, person_key): the truth person behind each product person (majority of identifiers)."""
    from features.privacy import key_identifier

    truth = pd.read_parquet(settings.truth_dir / "identifiers.parquet")
    salt = settings.id_salt()
    truth = truth.assign(id_key=[key_identifier(t, v, salt) for t, v in zip(truth["id_type"], truth["id_value"],
                                                                             strict=True)])
    truth = truth.dropna(subset=["id_key"]).drop_duplicates(["id_type", "id_key"])
    identity_map = pd.read_parquet(settings.identity_dir / IDENTITY_FILE, columns=["id_type", "id_key", "person_id"])
    joined = identity_map.merge(truth, on=["id_type", "id_key"], how="inner")
    counts = joined.groupby(["person_id", "person_key"]).size().rename("n").reset_index()
    counts = counts.sort_values(["person_id", "n", "person_key"], ascending=[True, False, True], kind="stable")
    return counts.drop_duplicates("person_id")[["person_id", "person_key"]].reset_index(drop=True)


def oracle_churn_probability(persons: pd.DataFrame, person_key: pd.Series, when: pd.Series) -> np.ndarray:
    """True P(no order in the next 30 days) of each (person_key, time) from the latent order and churn rates.

    Exact at any time (not only at the truth frame's weekly dates): the formula of
    ``simulator.churn.p_no_order`` on truth/persons.parquet (order_rate, churn_hazard, churned_at).
    """
    p = persons.set_index("person_key")
    keys = pd.Index(person_key.astype(str))
    rate = p["order_rate"].reindex(keys).to_numpy(dtype=float)
    hazard = p["churn_hazard"].reindex(keys).to_numpy(dtype=float)
    churned = pd.to_datetime(p["churned_at"].reindex(keys), utc=True)
    when = pd.to_datetime(when, utc=True).reset_index(drop=True)
    alive = (churned.isna().to_numpy()) | (churned.reset_index(drop=True) > when).to_numpy()
    return p_no_order(rate, hazard, alive, CHURN_HORIZON_DAYS)


def p_no_order(order_rate: np.ndarray, hazard: np.ndarray, alive: np.ndarray,
               horizon: float = CHURN_HORIZON_DAYS) -> np.ndarray:
    """P(no order in ``horizon`` days) when orders are Poisson(rate) until churn ~ Exp(hazard).

    Same formula as ``simulator.churn.p_no_order`` (kept here so evaluation reads truth files only and
    does not import the simulator package): h/(h+λ)·(1 − e^{−(h+λ)H}) + e^{−(h+λ)H}; churned -> 1.
    """
    s = order_rate + hazard
    decay = np.exp(-s * horizon)
    p = np.where(s > 0, hazard / np.where(s > 0, s, 1.0) * (1.0 - decay) + decay, 1.0)
    return np.where(alive, p, 1.0)


def _scores(frame: pd.DataFrame, oracle: np.ndarray) -> dict:
    model_auc = _auc(frame["label"], frame["score"])
    oracle_auc = _auc(frame["label"], oracle)
    out = {
        "n_heldout": int(len(frame)),
        "auc_on_matched": model_auc,
        "baseline_auc_on_matched": _auc(frame["label"], frame["baseline_score"]),
        "oracle_auc": oracle_auc,
        "oracle_ratio": (model_auc / oracle_auc) if model_auc and oracle_auc else None,
    }
    if out["baseline_auc_on_matched"] and oracle_auc:
        out["baseline_oracle_ratio"] = out["baseline_auc_on_matched"] / oracle_auc
    return out


def churn_oracle(settings: Settings, heldout: pd.DataFrame) -> dict:
    """Oracle AUC of the true churn probabilities on the held-out rows and labels, and the model's share."""
    persons = pd.read_parquet(settings.truth_dir / "persons.parquet")
    frame = heldout.merge(truth_person_map(settings), on="person_id", how="inner")
    oracle = oracle_churn_probability(persons, frame["person_key"], frame["event_timestamp"])
    ok = np.isfinite(oracle)
    out = _scores(frame[ok].reset_index(drop=True), oracle[ok])
    out["n_matched"] = int(ok.sum())
    # the truth's own labels on the same rows: how much One-ID fragmentation costs the labels themselves
    return out


def propensity_oracle(settings: Settings, heldout: pd.DataFrame) -> dict:
    """Oracle AUC of the true conversion probabilities (joined by touch_id) on the held-out touches."""
    truth = pd.read_parquet(settings.truth_dir / "responses.parquet", columns=["touch_id", "p_convert"])
    frame = heldout.merge(truth, on="touch_id", how="inner").reset_index(drop=True)
    out = _scores(frame, frame["p_convert"].to_numpy())
    out["n_matched"] = int(len(frame))
    per_action = {}
    for action, group in frame.groupby("action_id"):
        m, o = _auc(group["label"], group["score"]), _auc(group["label"], group["p_convert"])
        per_action[str(action)] = {"auc": m, "oracle_auc": o, "oracle_ratio": (m / o) if m and o else None}
    out["per_action"] = per_action
    return out


ORACLES = {"churn": churn_oracle, "propensity": propensity_oracle}


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def models_report(settings: Settings, *, with_truth: bool | None = None) -> list[dict]:
    """One row per champion: headline metric vs baseline, the run's other metrics, and (for churn and
    propensity, when the simulator's truth is present) the oracle AUC and the model's ratio to it."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from training.registry import CHAMPION, configure_mlflow

    configure_mlflow(settings)
    client = MlflowClient()
    truth = settings.truth_dir.exists() if with_truth is None else with_truth
    rows = []
    for registered in sorted(client.search_registered_models(), key=lambda m: m.name):
        try:
            mv = client.get_model_version_by_alias(registered.name, CHAMPION)
        except mlflow.exceptions.MlflowException:
            continue
        tags = mv.tags or {}
        run = client.get_run(mv.run_id) if mv.run_id else None
        metrics = dict(run.data.metrics) if run else {}
        value, base = _float(tags.get("value")), _float(tags.get("baseline_value"))
        row = {
            "name": registered.name, "version": str(mv.version), "metric": tags.get("metric"),
            "value": value, "baseline_value": base,
            "beats_baseline": None if value is None or base is None else value > base,
            "metrics": {k: metrics[k] for k in sorted(metrics)},
        }
        if truth and registered.name in ORACLES and run is not None:
            row["oracle"] = _oracle_for(settings, client, registered.name, mv.run_id)
        rows.append(_clean(row))
    return rows


def _oracle_for(settings: Settings, client, name: str, run_id: str) -> dict | None:
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="nba-report-") as tmp:
            path = client.download_artifacts(run_id, HELDOUT_ARTIFACT, tmp)
            heldout = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - a run without the artifact is reported, not fatal
        return {"error": f"no {HELDOUT_ARTIFACT} in run {run_id}: {type(exc).__name__}"}
    try:
        return ORACLES[name](settings, heldout)
    except FileNotFoundError as exc:
        return {"error": f"truth not available: {exc}"}


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def write_report(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    return path
