"""The BentoML service channel apps call: /decide, /feedback (plus BentoML's /healthz, /readyz, /metrics)."""

from __future__ import annotations

import logging
from datetime import datetime

import bentoml
from bentoml.exceptions import NotFound

from config import load_settings
from serving.contracts import Customer, DecideRequest, Decision, FeedbackAck, FeedbackRequest
from serving.decision_log import UnknownDecision
from serving.loader import build_engine

log = logging.getLogger("nba.serving")


@bentoml.service(name="nba", traffic={"timeout": 30}, workers=1)
class NBAService:
    """One deployable: loads the champions at start-up and answers with the decision engine."""

    def __init__(self) -> None:
        settings = load_settings()
        self.engine, self.decision_log = build_engine(settings)
        log.info("NBA service ready (profile %s, models %s)", settings.profile, self.engine.models.versions)

    def __is_ready__(self) -> bool:
        return self.engine is not None

    @bentoml.api(input_spec=DecideRequest)
    def decide(
        self,
        customer: Customer,
        channel: str | None = None,
        placement: str | None = None,
        context: dict | None = None,
        limit: int | None = None,
    ) -> Decision:
        request = DecideRequest(
            customer=customer, channel=channel, placement=placement, context=context or {}, limit=limit
        )
        decision, _ = self.engine.decide(request)
        self.decision_log.record_decision(decision, channel)
        return decision

    @bentoml.api(input_spec=FeedbackRequest)
    def feedback(
        self,
        decision_id: str,
        action_id: str,
        outcome: str,
        value: float | None = None,
        ts: datetime | None = None,
    ) -> FeedbackAck:
        try:
            new = self.decision_log.record_feedback(decision_id, action_id, outcome, value, ts)
        except UnknownDecision as exc:
            raise NotFound(exc.args[0]) from None
        return FeedbackAck(decision_id=decision_id, action_id=action_id, outcome=outcome, duplicate=not new)
