"""Suitability: may we contact this person on this channel at all? No consent means no contact, ever."""

from __future__ import annotations

from collections.abc import Mapping

from features.schema import CONSENT_CHANNELS
from serving.candidates import Candidate


def has_consent(features: Mapping[str, float] | None, channel: str) -> bool:
    """Outbound channels need an explicit, current grant; unknown persons have granted nothing."""
    if channel not in CONSENT_CHANNELS:
        return True
    if not features:
        return False
    value = features.get(f"consent_{channel}")
    return value is not None and value == value and int(value) == 1


def apply_consent(candidates: list[Candidate], features: Mapping[str, float] | None) -> list[Candidate]:
    """Mark candidates on channels without consent as removed; returns the survivors."""
    kept = []
    for c in candidates:
        if has_consent(features, c.channel):
            kept.append(c)
        else:
            c.removed_by = f"no consent for {c.channel}"
    return kept
