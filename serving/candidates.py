"""A candidate is one (action, channel) pair moving through the decision funnel, with every factor kept."""

from __future__ import annotations

from dataclasses import dataclass, field

from serving.catalog import Action


@dataclass
class Candidate:
    action: Action
    channel: str
    propensity: float = 0.0
    context_weight: float = 1.0
    removed_by: str | None = None
    reasons: list[str] = field(default_factory=list)
    payload: dict = field(default_factory=dict)

    @property
    def value(self) -> float:
        return self.action.value

    @property
    def lever(self) -> float:
        return self.action.lever

    @property
    def priority(self) -> float:
        """Pega-style arbitration priority P x C x V x L."""
        return self.propensity * self.context_weight * self.value * self.lever


def expand(actions, channel: str | None) -> list[Candidate]:
    """Every (action, channel) pair the request could be answered with (applicability by channel)."""
    return [
        Candidate(action=a, channel=c)
        for a in actions
        for c in a.channels
        if channel is None or c == channel
    ]
