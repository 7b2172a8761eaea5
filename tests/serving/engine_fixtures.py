"""Small real models (LightGBM on synthetic rows) and in-memory persons for pure engine tests."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from features.schema import CONSENT_CHANNELS
from models.churn import ChurnClassifier
from models.propensity import PropensityClassifier
from serving.catalog import parse_catalog
from serving.engine import DecisionEngine, ModelSet
from serving.experiments import ExperimentConfig
from serving.policies import parse_policies

NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai: outside quiet hours
NUMERIC = ("recency_days", "tenure_days", "orders_total", "monetary_90d", "events_30d")
CONSENTS = tuple(f"consent_{c}" for c in CONSENT_CHANNELS)

CATALOG = {
    "actions": [
        {"id": "coupon", "channels": ["sms", "email", "app", "web"], "value": 30, "cost": 3},
        {"id": "winback", "channels": ["guide", "sms"], "value": 60, "lever": 1.2,
         "eligibility": "churn_score > 0.3 and recency_days > 30"},
        {"id": "survey", "channels": ["email", "sms"], "value": 2, "purpose": "service"},
        {"id": "reco", "channels": ["web", "app", "email"], "value": 20, "source": "recommender",
         "treatments": {"web": {"placements": ["home_hero"]}}},
        {"id": "ads", "channels": ["paid_ads", "wechat_oa"], "value": 15},
        {"id": "store", "channels": ["pos"], "value": 25},
    ]
}
POLICIES = {
    "caps": [{"channel": "sms", "max": 2, "days": 7}, {"channel": "all", "max": 4, "days": 7}],
    "quiet_hours": {"start": "21:00", "end": "08:00", "channels": {"guide": "suppress", "sms": "defer"}},
    "default_timezone": "Asia/Shanghai",
    "suppression": {"rejections": 2, "days": 30},
    "exploration": {"effective_sample_size": 200, "new_action_sample_size": 10, "ramp_days": 30, "seed": 0},
    "volume": {"daily_outbound": None},
}


def random_features(rng: np.random.Generator, n: int, consent_rate: float = 0.4) -> pd.DataFrame:
    frame = pd.DataFrame({
        "recency_days": rng.exponential(40, n), "tenure_days": rng.uniform(0, 400, n),
        "orders_total": rng.poisson(3, n).astype(float), "monetary_90d": rng.exponential(150, n),
        "events_30d": rng.poisson(5, n).astype(float),
    })
    for name in CONSENTS:
        frame[name] = (rng.random(n) < consent_rate).astype(np.int64)
    return frame


def _fit_models(seed: int) -> tuple[PropensityClassifier, ChurnClassifier]:
    rng = np.random.default_rng(seed)
    n = 3_000
    people = random_features(rng, n)
    actions = rng.choice([a["id"] for a in CATALOG["actions"]], n)
    channels = rng.choice(["sms", "email", "web", "app", "guide", "pos"], n)
    logit = -3 + 0.01 * people["events_30d"] + (actions == "coupon") * 1.0 + (channels == "web") * 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = people[list(NUMERIC)].assign(action_id=actions, channel=channels)
    propensity = PropensityClassifier(n_estimators=20, num_leaves=7, seed=seed, n_jobs=1).fit(frame, y)
    churn_y = (people["recency_days"] + rng.normal(0, 20, n) > 50).astype(int)
    churn = ChurnClassifier(n_estimators=20, num_leaves=7, seed=seed, n_jobs=1).fit(people[list(NUMERIC)], churn_y)
    return propensity, churn


class StaticBandit:
    def __init__(self, shares: dict[str, float]):
        self.shares = shares

    def budget_shares(self, n_samples: int = 10_000, seed: int = 0) -> dict[str, float]:
        return dict(self.shares)


class TopItems:
    def recommend(self, person_id, k=10, exclude_seen=True):
        return [(f"I{i}", 1.0 / (i + 1)) for i in range(k)]


_CACHE: dict[int, ModelSet] = {}


def model_set(seed: int = 0, version: str = "1") -> ModelSet:
    if seed not in _CACHE:
        propensity, churn = _fit_models(seed)
        _CACHE[seed] = ModelSet(churn=churn, propensity=propensity, recommender=TopItems(),
                                bandit=StaticBandit({"sms": 0.5, "email": 0.3, "app": 0.2}), versions={})
    base = _CACHE[seed]
    return ModelSet(churn=base.churn, propensity=base.propensity, recommender=base.recommender,
                    bandit=base.bandit, versions={m: version for m in ("churn", "propensity", "recommender",
                                                                         "budget_bandit")})


class People:
    """Persons with several identifiers each: ``member_id`` M<i>, ``wechat_openid`` W<i>, ``cookie_id`` C<i>."""

    def __init__(self, features: pd.DataFrame):
        self.features = {f"P{i}": row for i, row in enumerate(features.to_dict("records"))}

    def lookup(self, id_type: str, key: str) -> str | None:
        prefix = {"member_id": "M", "wechat_openid": "W", "cookie_id": "C"}.get(id_type)
        if prefix is None or not key.startswith(prefix):
            return None
        person = "P" + key[1:]
        return person if person in self.features else None

    def read(self, person_id: str):
        return self.features.get(person_id)


def make_engine(people: People, *, policies: dict | None = None, experiments: ExperimentConfig | None = None,
                challenger=None, **kwargs) -> DecisionEngine:
    return DecisionEngine(
        catalog=parse_catalog(CATALOG), lookup_person=people.lookup, read_features=people.read,
        models=model_set(0), salt=b"test-salt", default_limit=3,
        policies=parse_policies({**POLICIES, **(policies or {})}),
        experiments=experiments or ExperimentConfig(), challenger=challenger,
        rng=np.random.default_rng(0), clock=lambda: NOW, **kwargs,
    )
