"""Arbitration: rank surviving candidates by P x C x V x L and keep the best channel per action."""

from __future__ import annotations

from serving.candidates import Candidate


def arbitrate(candidates: list[Candidate], limit: int) -> list[Candidate]:
    """Top ``limit`` candidates by priority, at most one per action so a customer never gets the same
    offer twice in one answer; ties break on action id for a stable order."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        current = best.get(c.action.id)
        if current is None or c.priority > current.priority:
            best[c.action.id] = c
    ranked = sorted(best.values(), key=lambda c: (-c.priority, c.action.id, c.channel))
    for c in candidates:
        if best.get(c.action.id) is not c:
            c.removed_by = c.removed_by or "another channel ranked higher for this action"
    for c in ranked[limit:]:
        c.removed_by = "below the top-k cut"
    return ranked[:limit]
