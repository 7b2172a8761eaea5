"""Suitability: may we contact this person, on this channel, for this purpose, now, once more?

Pure stages over candidates: consent per channel and purpose (no consent means no contact, ever), the
holdout group, quiet hours in the person's time zone, per-person caps per channel and period (counted on
the resolved person across all channels and identifiers) and suppression after repeated rejections.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from serving.candidates import Candidate, survivors
from serving.contact_history import Contact
from serving.policies import ALL_CHANNELS, Policies

__all__ = [
    "CapCounter", "apply_caps", "apply_consent", "consent_mask", "apply_holdout", "apply_quiet_hours", "apply_suppression",
    "has_consent", "person_timezone",
]

_DEFAULT = Policies()
STAGE = "suitability"


def _granted(value) -> bool:
    try:
        return value is not None and value == value and int(value) == 1
    except (TypeError, ValueError):
        return False


@lru_cache(maxsize=4096)
def _consent_names(templates: tuple[str, ...], channel: str) -> tuple[str, ...]:
    return tuple(t.format(channel=channel) for t in templates)


def has_consent(features: Mapping[str, object] | None, channel: str, purpose: str = "marketing",
                policies: Policies = _DEFAULT) -> bool:
    """Outbound channels need an explicit, current grant for the purpose; unknown persons granted nothing.

    The purpose's feature names are tried in order and the first one present decides (e.g. service
    messages use a service consent when the store has one, else the marketing consent).
    """
    if channel not in policies.outbound_channels:
        return True
    if not features:
        return False
    for name in _consent_names(tuple(policies.consent.get(purpose, policies.consent["marketing"])), channel):
        value = features.get(name)
        if value is not None and value == value:   # None and NaN: unknown, try the next name
            return _granted(value)
    return False


def consent_mask(frame, channel: str, purpose: str = "marketing", policies: Policies = _DEFAULT) -> np.ndarray:
    """:func:`has_consent` on every row of a feature frame at once, shape (len(frame),)."""
    n = len(frame)
    if channel not in policies.outbound_channels:
        return np.ones(n, dtype=bool)
    granted = np.zeros(n, dtype=bool)
    decided = np.zeros(n, dtype=bool)
    for template in policies.consent.get(purpose, policies.consent["marketing"]):
        name = template.format(channel=channel)
        if name not in frame.columns:
            continue
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(values) & ~decided
        granted |= present & (values == 1)
        decided |= present
    return granted


def apply_consent(candidates: list[Candidate], features: Mapping[str, object] | None,
                  policies: Policies = _DEFAULT) -> list[Candidate]:
    """Mark candidates on channels without consent for their purpose as removed; returns the survivors."""
    kept = []
    for c in survivors(candidates):
        if has_consent(features, c.channel, c.action.purpose, policies):
            kept.append(c)
        else:
            c.remove(STAGE, f"no consent for {c.channel} ({c.action.purpose})")
    return kept


def apply_holdout(candidates: list[Candidate], arm: str, policies: Policies = _DEFAULT) -> list[Candidate]:
    """The global holdout group receives no outbound contact (it measures incrementality)."""
    kept = []
    for c in survivors(candidates):
        if arm == "holdout" and c.channel in policies.outbound_channels:
            c.remove(STAGE, "holdout group: no outbound contact")
        else:
            kept.append(c)
    return kept


def person_timezone(features: Mapping[str, object] | None, context: Mapping[str, object] | None,
                    policies: Policies = _DEFAULT) -> ZoneInfo:
    """The person's zone from features or request context (``timezone``), else the configured default."""
    for source in (features, context):
        name = source.get("timezone") if source else None
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo(policies.default_timezone)


def apply_quiet_hours(candidates: list[Candidate], now: datetime, zone: ZoneInfo,
                      policies: Policies = _DEFAULT) -> list[Candidate]:
    """Inside the person's local quiet hours: ``suppress`` channels are removed, ``defer`` channels keep
    the candidate with ``payload['send_after']`` (UTC ISO time when quiet hours end)."""
    quiet = policies.quiet_hours
    if quiet is None:
        return survivors(candidates)
    local = now.astimezone(zone)
    if not quiet.contains(local.time()):
        return survivors(candidates)
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    send_after = end.astimezone(now.tzinfo).isoformat()
    deferred = f"quiet hours in {zone.key}: deferred to {send_after}"
    suppressed = f"quiet hours {quiet.start:%H:%M}-{quiet.end:%H:%M} in {zone.key}"
    kept = []
    for c in survivors(candidates):
        mode = quiet.modes.get(c.channel)
        if mode is None:
            kept.append(c)
        elif mode == "suppress":
            c.remove(STAGE, suppressed)
        else:
            c.payload["send_after"] = send_after
            c.reasons.append(deferred)
            kept.append(c)
    return kept


class CapCounter:
    """Per-person contact counts against every cap rule, from history plus contacts chosen this call.

    Caps count outbound contacts of the resolved person across all channels; ``blocking_rule`` names the
    first rule a further contact would break.
    """

    def __init__(self, contacts: Iterable[Contact], now: datetime, policies: Policies = _DEFAULT) -> None:
        self.policies = policies
        self.now = now
        self.outbound = frozenset(policies.outbound_channels)
        self.contacts = [c for c in contacts if c.channel in self.outbound]
        self.counts = [
            sum(1 for c in self.contacts if c.ts >= now - timedelta(days=rule.days) and self._applies(rule, c.channel))
            for rule in policies.caps
        ]

    @staticmethod
    def _applies(rule, channel: str) -> bool:
        return rule.channel == ALL_CHANNELS or rule.channel == channel

    def blocking_rule(self, candidate: Candidate) -> str | None:
        if candidate.channel not in self.outbound:
            return None
        for rule, n in zip(self.policies.caps, self.counts, strict=True):
            if self._applies(rule, candidate.channel) and n >= rule.max:
                return f"cap: at most {rule.max} contacts on {rule.channel} per {rule.days} days"
        caps = candidate.action.caps
        if caps.per_person is not None:
            since = self.now - timedelta(days=caps.per_person_days)
            n = sum(1 for c in self.contacts if c.action_id == candidate.action.id and c.ts >= since)
            if n >= caps.per_person:
                return f"cap: action {candidate.action.id} at most {caps.per_person} per person " \
                       f"per {caps.per_person_days} days"
        return None

    def add(self, candidate: Candidate) -> None:
        if candidate.channel not in self.outbound:
            return
        self.contacts.append(Contact(ts=self.now, action_id=candidate.action.id, channel=candidate.channel))
        for i, rule in enumerate(self.policies.caps):
            if self._applies(rule, candidate.channel):
                self.counts[i] += 1


def apply_caps(candidates: list[Candidate], counter: CapCounter) -> list[Candidate]:
    """Remove candidates whose channel or action cap is already reached for this person."""
    kept = []
    for c in survivors(candidates):
        rule = counter.blocking_rule(c)
        if rule is None:
            kept.append(c)
        else:
            c.remove(STAGE, rule)
    return kept


def apply_suppression(candidates: list[Candidate], rejections: Mapping[str, int],
                      policies: Policies = _DEFAULT) -> list[Candidate]:
    """Stop offering an action the person rejected ``suppression.rejections`` times lately."""
    limit, days = policies.suppression.rejections, policies.suppression.days
    kept = []
    for c in survivors(candidates):
        n = rejections.get(c.action.id, 0)
        if n >= limit:
            c.remove(STAGE, f"suppressed: {n} rejections of {c.action.id} in {days} days")
        else:
            kept.append(c)
    return kept
