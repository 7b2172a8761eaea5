"""Degraded, not down: when the online store or the models fail, answer safely instead of erroring.

The safe default never contacts anyone on an outbound channel (consent is unknown, so it is absent) and
offers inbound actions (web, store, ...) ranked by their catalog value. A failure is remembered only for
the request in flight, so the next request tries the real path again: recovery needs no restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping

from features.schema import CONSENT_CHANNELS
from serving.contracts import ActionDecision, Decision, new_decision_id

__all__ = ["FailureNote", "GuardedReader", "safe_default"]

log = logging.getLogger(__name__)
SAFE_ARM = "safe_default"


class FailureNote:
    """A per-thread note of what failed while answering the current request (each request runs on one
    worker thread from start to end)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def clear(self) -> None:
        self._local.reason = None

    def set(self, reason: str) -> None:
        self._local.reason = reason

    def take(self) -> str | None:
        reason = getattr(self._local, "reason", None)
        self._local.reason = None
        return reason


class GuardedReader:
    """Wraps an online feature reader: a failing read is noted and answered as "no features" (None), which
    the funnel treats like an unknown person - no outbound contact, inbound actions only."""

    def __init__(self, reader: Callable[[str], Mapping | None], note: FailureNote) -> None:
        self.reader = reader
        self.note = note

    def __call__(self, person_id: str):
        try:
            return self.reader(person_id)
        except Exception as exc:  # noqa: BLE001 - any store failure degrades; it never fails the request
            reason = f"online store unavailable: {type(exc).__name__}: {exc}"
            log.warning(reason)
            self.note.set(reason)
            return None

    def read_many(self, person_ids: list[str]) -> list[Mapping | None]:
        """Batch read (when the wrapped reader has one); a failure degrades the whole batch to no features."""
        try:
            many = getattr(self.reader, "read_many", None)
            return many(person_ids) if many is not None else [self.reader(p) for p in person_ids]
        except Exception as exc:  # noqa: BLE001 - same contract as a single read
            reason = f"online store unavailable: {type(exc).__name__}: {exc}"
            log.warning(reason)
            self.note.set(reason)
            return [None] * len(person_ids)


def safe_default(
    catalog: Iterable, channel: str | None, limit: int, reason: str, model_versions: Mapping[str, str] | None = None,
) -> Decision:
    """The answer when the engine cannot run: inbound actions by catalog value x lever, never outbound."""
    options = []
    for action in catalog:
        channels = [c for c in getattr(action, "channels", ()) if c not in CONSENT_CHANNELS]
        if channel is not None:
            channels = [c for c in channels if c == channel]
        if channels:
            worth = float(getattr(action, "value", 0.0)) * float(getattr(action, "lever", 1.0))
            options.append((worth, action, channels[0]))
    options.sort(key=lambda o: (-o[0], o[1].id))
    actions = [
        ActionDecision(
            action_id=a.id, channel=ch, score=round(worth, 6), propensity=0.0, value=float(getattr(a, "value", 0.0)),
            reasons=[f"degraded: {reason}", "safe default: inbound action by catalog value"],
            payload={"description": getattr(a, "description", "")},
        )
        for worth, a, ch in options[:limit]
    ]
    return Decision(
        decision_id=new_decision_id(), person_id=None, actions=actions, model_versions=dict(model_versions or {}),
        experiment_arm=SAFE_ARM, degraded=True, cold_start=True, degraded_reason=reason,
    )
