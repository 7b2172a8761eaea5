"""The action catalog: what may be offered, where, to whom, when, how often, and what it is worth.

Loaded from YAML (``config/actions.yaml``) and validated at start-up and by ``nba catalog check``. Every
error names the action and the field, and all errors are collected in one pass so marketing fixes the
whole file at once. Eligibility rules are safe expressions (:mod:`serving.expressions`) over the decision
features and person-level model scores; unknown names are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import yaml

from features.schema import CHANNELS
from serving.expressions import Expression, ExpressionError, compile_expression

__all__ = [
    "PURPOSES", "Action", "ActionCaps", "CatalogError", "Treatment", "check_catalog", "known_names",
    "load_catalog", "parse_catalog",
]

PURPOSES: tuple[str, ...] = ("marketing", "service")
# Person-level model scores an eligibility rule may read besides the features (see serving.eligibility).
SCORE_NAMES: tuple[str, ...] = ("churn_score",)


class CatalogError(ValueError):
    """A catalog entry is invalid; the message names the action and the field."""


@dataclass(frozen=True)
class Treatment:
    """How an action is rendered on one channel; ``placements`` empty means any placement."""

    channel: str
    placements: tuple[str, ...] = ()
    template: str | None = None


@dataclass(frozen=True)
class ActionCaps:
    """Per-action limits: contacts per person within ``per_person_days``, and total per day."""

    per_person: int | None = None
    per_person_days: int = 30
    daily: int | None = None


@dataclass(frozen=True)
class Action:
    id: str
    description: str
    channels: tuple[str, ...]
    value: float
    cost: float
    lever: float
    category: str | None = None
    discount: float = 0.0
    source: str | None = None
    purpose: str = "marketing"
    eligibility: Expression | None = None
    treatments: tuple[Treatment, ...] = ()
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    caps: ActionCaps = field(default_factory=ActionCaps)

    def __post_init__(self) -> None:
        # every channel's treatment, built once: the funnel asks for it per candidate and decision
        by_channel = {c: Treatment(channel=c) for c in self.channels}
        by_channel.update({t.channel: t for t in self.treatments})
        object.__setattr__(self, "_by_channel", by_channel)

    def treatment(self, channel: str) -> Treatment:
        found = self._by_channel.get(channel)
        return found if found is not None else Treatment(channel=channel)

    def is_valid_at(self, now: datetime) -> bool:
        return (self.valid_from is None or now >= self.valid_from) and (self.valid_to is None or now < self.valid_to)


def known_names() -> frozenset[str]:
    """Names an eligibility rule or segment may read: every decision feature plus the person scores."""
    from features.engineering import VIEW_FEATURES

    return frozenset([n for view in VIEW_FEATURES.values() for n in view] + list(SCORE_NAMES))


class _Collector:
    def __init__(self):
        self.errors: list[str] = []

    def add(self, action_id: str, name: str, message: str) -> None:
        self.errors.append(f"action {action_id!r}: field {name!r} {message}")


def _number(entry: dict, name: str, action_id: str, errors: _Collector, default=None, required=False,
            minimum: float | None = 0.0, integer: bool = False):
    if name not in entry or entry[name] is None:
        if required:
            errors.add(action_id, name, "is required")
        return default
    value = entry[name]
    try:
        if isinstance(value, bool):
            raise TypeError
        number = int(value) if integer else float(value)
        if integer and number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        errors.add(action_id, name, f"has invalid value {value!r}")
        return default
    if minimum is not None and number < minimum:
        errors.add(action_id, name, f"must be >= {minimum:g}, got {number!r}")
        return default
    return number


def _when(entry: dict, name: str, action_id: str, errors: _Collector) -> datetime | None:
    value = entry.get(name)
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            stamp = value
        elif isinstance(value, date):
            stamp = datetime(value.year, value.month, value.day)
        else:
            stamp = datetime.fromisoformat(str(value))
    except ValueError:
        errors.add(action_id, name, f"has invalid date {value!r} (use YYYY-MM-DD or ISO 8601)")
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _treatments(entry: dict, channels: list, action_id: str, errors: _Collector) -> tuple[Treatment, ...]:
    raw = entry.get("treatments") or {}
    if not isinstance(raw, dict):
        errors.add(action_id, "treatments", "must map channel -> {placements, template}")
        return ()
    out = []
    for channel, spec in raw.items():
        if channel not in channels:
            errors.add(action_id, "treatments", f"names channel {channel!r} that is not in 'channels'")
            continue
        spec = spec or {}
        if not isinstance(spec, dict):
            errors.add(action_id, f"treatments.{channel}", "must be a mapping")
            continue
        placements = spec.get("placements") or []
        if not isinstance(placements, list) or not all(isinstance(p, str) and p for p in placements):
            errors.add(action_id, f"treatments.{channel}.placements", "must be a list of names")
            placements = []
        template = spec.get("template")
        out.append(Treatment(channel=channel, placements=tuple(placements),
                             template=None if template is None else str(template)))
    return tuple(out)


def _caps(entry: dict, action_id: str, errors: _Collector) -> ActionCaps:
    raw = entry.get("caps")
    if raw is None:
        return ActionCaps()
    if not isinstance(raw, dict):
        errors.add(action_id, "caps", "must be a mapping with per_person, per_person_days, daily")
        return ActionCaps()
    unknown = sorted(set(raw) - {"per_person", "per_person_days", "daily"})
    if unknown:
        errors.add(action_id, "caps", f"has unknown keys {unknown}")
    return ActionCaps(
        per_person=_number(raw, "per_person", action_id, errors, integer=True, minimum=0),
        per_person_days=_number(raw, "per_person_days", action_id, errors, 30, integer=True, minimum=1),
        daily=_number(raw, "daily", action_id, errors, integer=True, minimum=0),
    )


def _parse_action(entry: dict, action_id: str, names: frozenset[str], errors: _Collector) -> Action | None:
    before = len(errors.errors)
    channels = entry.get("channels")
    if channels is None and isinstance(entry.get("treatments"), dict):
        channels = list(entry["treatments"])
    if not isinstance(channels, list) or not channels:
        errors.add(action_id, "channels", "must be a non-empty list (or give 'treatments' per channel)")
        channels = []
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        errors.add(action_id, "channels", f"has unknown channels {unknown}; expected some of {list(CHANNELS)}")
    purpose = entry.get("purpose", "marketing")
    if purpose not in PURPOSES:
        errors.add(action_id, "purpose", f"must be one of {list(PURPOSES)}, got {purpose!r}")
    eligibility = None
    if entry.get("eligibility") not in (None, ""):
        try:
            eligibility = compile_expression(str(entry["eligibility"]), names)
        except ExpressionError as exc:
            errors.add(action_id, "eligibility", str(exc))
    discount = _number(entry, "discount", action_id, errors, 0.0)
    if discount is not None and not 0 <= discount < 1:
        errors.add(action_id, "discount", f"must be in [0, 1), got {discount!r}")
    valid_from = _when(entry, "valid_from", action_id, errors)
    valid_to = _when(entry, "valid_to", action_id, errors)
    if valid_from and valid_to and valid_to <= valid_from:
        errors.add(action_id, "valid_to", f"must be after valid_from ({valid_from.date()})")
    source = entry.get("source")
    if source not in (None, "recommender"):
        errors.add(action_id, "source", f"must be 'recommender' or absent, got {source!r}")
    action = Action(
        id=action_id,
        description=str(entry.get("description", "")),
        channels=tuple(channels),
        value=_number(entry, "value", action_id, errors, 0.0, required=True),
        cost=_number(entry, "cost", action_id, errors, 0.0),
        lever=_number(entry, "lever", action_id, errors, 1.0),
        category=entry.get("category"),
        discount=discount or 0.0,
        source=source,
        purpose=purpose,
        eligibility=eligibility,
        treatments=_treatments(entry, channels, action_id, errors),
        valid_from=valid_from,
        valid_to=valid_to,
        caps=_caps(entry, action_id, errors),
    )
    return action if len(errors.errors) == before else None


def check_catalog(raw: dict, names: frozenset[str] | None = None) -> tuple[tuple[Action, ...], list[str]]:
    """Parse every entry and collect every error: ``(valid actions, error messages)``."""
    names = known_names() if names is None else names
    errors = _Collector()
    entries = (raw or {}).get("actions") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        return (), ["catalog needs a non-empty list under 'actions'"]
    actions, seen = [], set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("id"):
            errors.errors.append(f"action #{i}: field 'id' is required")
            continue
        action_id = str(entry["id"])
        if action_id in seen:
            errors.errors.append(f"action {action_id!r}: duplicate id")
            continue
        seen.add(action_id)
        action = _parse_action(entry, action_id, names, errors)
        if action is not None:
            actions.append(action)
    return tuple(actions), errors.errors


def parse_catalog(raw: dict, names: frozenset[str] | None = None) -> tuple[Action, ...]:
    """The validated catalog; raises :class:`CatalogError` listing every problem."""
    actions, errors = check_catalog(raw, names)
    if errors:
        raise CatalogError("; ".join(errors))
    return actions


def read_catalog_yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from exc


def load_catalog(path: Path, names: frozenset[str] | None = None) -> tuple[Action, ...]:
    return parse_catalog(read_catalog_yaml(path), names)
