"""A no-op BentoML service with the same /decide contract: the baseline the decide benchmark divides by.

It validates the same request model and returns the same response model with a fixed answer, and it
applies the same process settings after start-up as :class:`serving.service.NBAService`
(:mod:`serving.runtime`), so the difference between the two is exactly the decision work (and its
durable log).
"""

from __future__ import annotations

import uuid

import bentoml

from serving import runtime
from serving.contracts import ActionDecision, Customer, DecideRequest, Decision

__all__ = ["NoopService"]

_ACTION = ActionDecision(action_id="noop", channel="web", score=0.0, propensity=0.0, value=0.0,
                         reasons=["no-op baseline"], payload={})


@bentoml.service(name="nba_noop", traffic={"timeout": 30}, workers=1, threads=16)
class NoopService:
    """Answers every request with the same action; used only by benchmarks/decide.py."""

    def __init__(self) -> None:
        runtime.settle()

    @bentoml.on_startup
    def _die_with_arbiter(self) -> None:
        runtime.die_with_parent()

    @bentoml.api(input_spec=DecideRequest)
    def decide(
        self,
        customer: Customer,
        channel: str | None = None,
        placement: str | None = None,
        context: dict | None = None,
        limit: int | None = None,
    ) -> Decision:
        return Decision(decision_id=uuid.uuid4().hex, person_id=None, actions=[_ACTION], model_versions={},
                        experiment_arm="noop", degraded=False, cold_start=True)
