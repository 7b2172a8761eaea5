"""Eligibility: may this person get this action at all (validity window and the action's rule)?

Rules are safe expressions over the person's decision features and person-level scores (``churn_score``),
see :mod:`serving.expressions`. An unknown person or a missing value never satisfies a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from serving.candidates import Candidate, survivors

__all__ = ["apply_eligibility", "person_scope"]


def person_scope(features: Mapping[str, object] | None, scores: Mapping[str, float]) -> dict | None:
    """The names an eligibility rule reads: features plus scores; None for an unknown person."""
    if features is None:
        return None
    return {**features, **scores}


def apply_eligibility(candidates: list[Candidate], scope: Mapping[str, object] | None, now: datetime,
                      rules_passed: Mapping[str, bool] | None = None) -> list[Candidate]:
    """Remove candidates outside their action's validity window or failing its eligibility rule.

    The rule is evaluated once per action, not once per channel; ``rules_passed`` holds verdicts already
    computed for this person (batch runs evaluate each rule on whole columns).
    """
    verdicts: dict[str, str | None] = {}
    kept = []
    for c in survivors(candidates):
        action = c.action
        if action.id not in verdicts:
            if not action.is_valid_at(now):
                verdicts[action.id] = f"not eligible: outside validity window ({_window(action)})"
            elif action.eligibility is not None and not (
                    rules_passed[action.id] if rules_passed is not None and action.id in rules_passed
                    else action.eligibility.evaluate(scope)):
                verdicts[action.id] = f"not eligible: rule {action.eligibility.text!r} not satisfied"
            else:
                verdicts[action.id] = None
        rule = verdicts[action.id]
        if rule is None:
            kept.append(c)
        else:
            c.remove("eligibility", rule)
    return kept


def _window(action) -> str:
    start = action.valid_from.date().isoformat() if action.valid_from else "-"
    end = action.valid_to.date().isoformat() if action.valid_to else "-"
    return f"{start} .. {end}"
