"""A candidate is one (action, channel) pair moving through the decision funnel, with every factor kept.

Stages never delete candidates: they set ``removed_by`` (the rule) and ``stage`` (where), so
``engine.explain`` can show the whole funnel and a decision can say why an action did not win.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from serving.catalog import Action

__all__ = ["STAGES", "Candidate", "apply_applicability", "expand", "survivors"]

STAGES: tuple[str, ...] = (
    "applicability", "eligibility", "suitability", "arbitration", "volume", "top_k",
)


@dataclass(slots=True)
class Candidate:
    """Factors: P = ``propensity`` (model score) or its Thompson draw ``sampled_propensity`` when
    exploring, C = ``context_weight``, V = action value, L = action lever; ``maturity`` in [0, 1]."""

    action: Action
    channel: str
    propensity: float = 0.0
    sampled_propensity: float | None = None
    context_weight: float = 1.0
    maturity: float = 1.0
    removed_by: str | None = None
    stage: str | None = None
    # created on first use: most candidates never get a reason or payload, and two containers per
    # candidate were a third of the objects a batch of 100,000 decisions allocated (and the collector
    # walked)
    _reasons: list[str] | None = None
    _payload: dict | None = None

    @property
    def reasons(self) -> list[str]:
        if self._reasons is None:
            self._reasons = []
        return self._reasons

    @property
    def payload(self) -> dict:
        if self._payload is None:
            self._payload = {}
        return self._payload

    @property
    def value(self) -> float:
        return self.action.value

    @property
    def lever(self) -> float:
        return self.action.lever

    @property
    def arbitration_propensity(self) -> float:
        return self.propensity if self.sampled_propensity is None else self.sampled_propensity

    @property
    def priority(self) -> float:
        """Pega-style arbitration priority P x C x V x L."""
        return self.arbitration_propensity * self.context_weight * self.value * self.lever

    def remove(self, stage: str, rule: str) -> None:
        """Mark as removed by ``rule`` at ``stage`` (the first removal wins)."""
        if self.removed_by is None:
            self.removed_by, self.stage = rule, stage

    def factors(self) -> dict:
        return {
            "propensity": round(self.propensity, 6),
            "sampled_propensity": None if self.sampled_propensity is None else round(self.sampled_propensity, 6),
            "context_weight": self.context_weight,
            "value": self.value,
            "lever": self.lever,
            "maturity": round(self.maturity, 4),
            "priority": round(self.priority, 6),
        }


def expand(actions: Iterable[Action], channel: str | None = None) -> list[Candidate]:
    """Every (action, channel) pair of the catalog; with ``channel``, only the pairs on that channel."""
    return [Candidate(action=a, channel=c) for a in actions for c in a.channels if channel is None or c == channel]


def survivors(candidates: Iterable[Candidate]) -> list[Candidate]:
    return [c for c in candidates if c.removed_by is None]


def apply_applicability(candidates: list[Candidate], channel: str | None, placement: str | None
                        ) -> list[Candidate]:
    """Applicability: the action has a treatment for the asking channel and placement.

    Without ``channel`` the request lets the engine choose across channels; a placement restricts to
    treatments that list it (a treatment with no placements fits any placement).
    """
    if channel is None and placement is None:
        return survivors(candidates)  # every treatment applies
    kept = []
    for c in survivors(candidates):
        if channel is not None and c.channel != channel:
            c.remove("applicability", f"not applicable: request is for channel {channel}")
            continue
        placements = c.action.treatment(c.channel).placements
        if placement is not None and placements and placement not in placements:
            c.remove("applicability", f"not applicable: no treatment for placement {placement!r}")
            continue
        kept.append(c)
    return kept
