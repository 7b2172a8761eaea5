"""One-ID linking rules: how far each identifier type is trusted to join persons (``config/identity.yaml``).

Why per-type trust: a member id or a phone belongs to one person, but a browser cookie or a tablet's device
id is whatever the person holding the device happens to be. Joining persons on weak identifiers is how
identity graphs over-merge (a store kiosk would swallow every customer who logged in on it), so:

- ``trust`` gives each identifier type a level (strong, medium, weak);
- ``links`` says which levels one event may join: by default strong joins anything, medium and weak only
  join a strong identifier (two cookies in one event do not make a person);
- ``max_persons`` per level is the hub guard: an identifier seen with more distinct persons than this
  links nobody (it is kept, flagged ``shared``, and attached to no single person);
- ``unique_types`` are the types a person holds at most one of (member id, unionid): an identifier seen
  with two of them is seen with two persons;
- ``time_split_types`` (recycled phones) are split into eras when their owners follow one another in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from config import PROJECT_ROOT
from features.schema import ID_TYPES

IDENTITY_RULES_FILE = PROJECT_ROOT / "config" / "identity.yaml"
TRUST_LEVELS: tuple[str, ...] = ("strong", "medium", "weak")

__all__ = ["IDENTITY_RULES_FILE", "TRUST_LEVELS", "IdentityRules", "load_identity_rules"]


def _default_trust() -> dict[str, str]:
    return {"member_id": "strong", "wechat_unionid": "strong", "wechat_openid": "strong", "phone": "strong",
            "email": "strong", "pos_card": "medium", "device_id": "weak", "cookie_id": "weak"}


@dataclass(frozen=True)
class IdentityRules:
    """Validated linking rules; the defaults equal ``config/identity.yaml``."""

    trust: dict[str, str] = field(default_factory=_default_trust)
    links: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "strong": ("strong", "medium", "weak"), "medium": ("strong",), "weak": ("strong",)})
    unique_types: tuple[str, ...] = ("member_id", "wechat_unionid")
    max_persons: dict[str, int] = field(default_factory=lambda: {"strong": 1, "medium": 1, "weak": 1})
    time_split_types: tuple[str, ...] = ("phone",)

    def __post_init__(self) -> None:
        missing = [t for t in ID_TYPES if t not in self.trust]
        if missing:
            raise ValueError(f"trust: every identifier type needs a level, missing {missing}")
        for id_type, level in self.trust.items():
            if id_type not in ID_TYPES:
                raise ValueError(f"trust: unknown identifier type {id_type!r}; expected one of {ID_TYPES}")
            if level not in TRUST_LEVELS:
                raise ValueError(f"trust.{id_type}: level must be one of {TRUST_LEVELS}, got {level!r}")
        for level, allowed in self.links.items():
            bad = [x for x in (level, *allowed) if x not in TRUST_LEVELS]
            if bad:
                raise ValueError(f"links.{level}: unknown trust levels {bad}; expected {TRUST_LEVELS}")
        for level in TRUST_LEVELS:
            value = self.max_persons.get(level)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"max_persons.{level}: must be an integer >= 1, got {value!r}")
        for name in ("unique_types", "time_split_types"):
            bad = [t for t in getattr(self, name) if t not in ID_TYPES]
            if bad:
                raise ValueError(f"{name}: unknown identifier types {bad}; expected some of {ID_TYPES}")

    def may_link(self, type_a: str, type_b: str) -> bool:
        """Whether one event holding both types joins them (symmetric)."""
        a, b = self.trust[type_a], self.trust[type_b]
        return b in self.links.get(a, ()) or a in self.links.get(b, ())

    def rank(self, id_type: str) -> int:
        """0 for strong, 1 medium, 2 weak: the order in which an event's identifiers name its person."""
        return TRUST_LEVELS.index(self.trust[id_type])


def load_identity_rules(path: Path | None = None) -> IdentityRules:
    """Read and validate the rules file (default ``config/identity.yaml``)."""
    path = Path(path or IDENTITY_RULES_FILE)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"identity rules file {path}: {exc}") from exc
    defaults = IdentityRules()
    return IdentityRules(
        trust=dict(raw.get("trust", defaults.trust)),
        links={k: tuple(v) for k, v in raw.get("links", defaults.links).items()},
        unique_types=tuple(raw.get("unique_types", defaults.unique_types)),
        max_persons=dict(raw.get("max_persons", defaults.max_persons)),
        time_split_types=tuple(raw.get("time_split_types", defaults.time_split_types)),
    )
