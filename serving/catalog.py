"""The action catalog: what may be offered, where, and what it is worth, loaded from YAML and validated."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from features.schema import CHANNELS


class CatalogError(ValueError):
    """A catalog entry is invalid; the message names the action and the field."""


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


def _field(entry: dict, name: str, action_id: str, kind, default=None, required=True):
    if name not in entry:
        if required:
            raise CatalogError(f"action {action_id!r}: field {name!r} is required")
        return default
    value = entry[name]
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise CatalogError(f"action {action_id!r}: field {name!r} has invalid value {value!r}") from None


def parse_catalog(raw: dict) -> tuple[Action, ...]:
    entries = (raw or {}).get("actions")
    if not isinstance(entries, list) or not entries:
        raise CatalogError("catalog needs a non-empty list under 'actions'")
    actions, seen = [], set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("id"):
            raise CatalogError(f"action #{i}: field 'id' is required")
        action_id = str(entry["id"])
        if action_id in seen:
            raise CatalogError(f"action {action_id!r}: duplicate id")
        seen.add(action_id)
        channels = entry.get("channels")
        if not isinstance(channels, list) or not channels:
            raise CatalogError(f"action {action_id!r}: field 'channels' must be a non-empty list")
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            raise CatalogError(f"action {action_id!r}: field 'channels' has unknown channels {unknown}")
        action = Action(
            id=action_id,
            description=str(entry.get("description", "")),
            channels=tuple(channels),
            value=_field(entry, "value", action_id, float),
            cost=_field(entry, "cost", action_id, float, 0.0, required=False),
            lever=_field(entry, "lever", action_id, float, 1.0, required=False),
            category=entry.get("category"),
            discount=_field(entry, "discount", action_id, float, 0.0, required=False),
            source=entry.get("source"),
        )
        if action.value < 0 or action.lever < 0 or action.cost < 0:
            raise CatalogError(f"action {action_id!r}: value, cost and lever must be >= 0")
        if not 0 <= action.discount < 1:
            raise CatalogError(f"action {action_id!r}: field 'discount' must be in [0, 1)")
        actions.append(action)
    return tuple(actions)


def load_catalog(path: Path) -> tuple[Action, ...]:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from exc
    return parse_catalog(raw)
