"""The decision engine: resolve the person, read features, score, filter, arbitrate. In process, no HTTP.

The BentoML service is a thin shell around :class:`DecisionEngine`, so the funnel can be tested and
benchmarked without a server.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.privacy import key_identifier
from serving.arbitration import arbitrate
from serving.candidates import Candidate, expand
from serving.catalog import Action
from serving.contact_policy import apply_consent
from serving.contracts import ActionDecision, DecideRequest, Decision

log = logging.getLogger(__name__)

RECOMMENDED_ITEMS = 5


@dataclass
class ModelSet:
    """The fast in-process predictors of the served models and the registry versions they came from."""

    churn: object
    propensity: object
    recommender: object
    bandit: object
    versions: dict[str, str] = field(default_factory=dict)


@dataclass
class DecisionEngine:
    catalog: tuple[Action, ...]
    lookup_person: Callable[[str, str], str | None]
    read_features: Callable[[str], Mapping[str, float] | None]
    models: ModelSet
    salt: bytes
    default_limit: int = 3

    def resolve(self, id_type: str, raw_id: str) -> str | None:
        key = key_identifier(id_type, raw_id, self.salt)
        return None if key is None else self.lookup_person(id_type, key)

    def decide(self, request: DecideRequest) -> tuple[Decision, list[Candidate]]:
        """Returns the decision and every candidate with its factors and the rule that removed it."""
        person_id = self.resolve(request.customer.id_type, request.customer.id)
        features = self.read_features(person_id) if person_id else None
        cold_start = features is None
        candidates = expand(self.catalog, request.channel)
        self._score(candidates, features, person_id)
        suitable = apply_consent(candidates, features)
        chosen = arbitrate(suitable, request.limit or self.default_limit)
        churn = self._churn(features)
        actions = [self._to_decision(c, churn, cold_start) for c in chosen]
        decision = Decision(
            decision_id=uuid.uuid4().hex,
            person_id=person_id,
            actions=actions,
            model_versions=dict(self.models.versions),
            experiment_arm="champion",
            degraded=False,
            cold_start=cold_start,
        )
        return decision, candidates

    def _frame(self, candidates: list[Candidate], features: Mapping[str, float] | None) -> pd.DataFrame:
        names = self.models.propensity.feature_names_
        row = {n: (np.nan if features is None or features.get(n) is None else features[n]) for n in names}
        frame = pd.DataFrame([row] * len(candidates))
        frame["action_id"] = [c.action.id for c in candidates]
        frame["channel"] = [c.channel for c in candidates]
        return frame

    def _score(self, candidates: list[Candidate], features, person_id: str | None) -> None:
        if not candidates:
            return
        probs = self.models.propensity.predict_proba(self._frame(candidates, features))
        shares = self.models.bandit.budget_shares()
        for c, p in zip(candidates, probs, strict=True):
            c.propensity = float(p)
            c.reasons.append(f"propensity {p:.3f} for {c.action.id} on {c.channel}")
            c.reasons.append(f"channel budget share {shares.get(c.channel, 0.0):.2f}")
            if c.action.source == "recommender":
                items = self.models.recommender.recommend(person_id, RECOMMENDED_ITEMS) if person_id else []
                if not items:
                    items = self.models.recommender.recommend(None, RECOMMENDED_ITEMS)
                c.payload = {"items": [{"item_id": i, "score": round(float(s), 4)} for i, s in items]}

    def _churn(self, features) -> float | None:
        if features is None:
            return None
        names = self.models.churn.feature_names_
        row = pd.DataFrame([{n: features.get(n, np.nan) for n in names}])
        return float(self.models.churn.predict_proba(row)[0])

    @staticmethod
    def _to_decision(c: Candidate, churn: float | None, cold_start: bool) -> ActionDecision:
        reasons = list(c.reasons)
        reasons.append(f"priority = P {c.propensity:.3f} x C {c.context_weight:.2f} x V {c.value:g} x L {c.lever:g}")
        if churn is not None:
            reasons.append(f"churn risk {churn:.2f}")
        if cold_start:
            reasons.append("cold start: unknown customer, popular action")
        return ActionDecision(
            action_id=c.action.id,
            channel=c.channel,
            score=round(c.priority, 6),
            propensity=round(c.propensity, 6),
            value=c.value,
            reasons=reasons,
            payload=dict(c.payload, description=c.action.description),
        )
