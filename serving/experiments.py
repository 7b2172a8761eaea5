"""Experiments: champion/challenger split, shadow scoring and a global holdout, by hashing the person.

The arm is a pure function of (salt, person): the same person gets the same arm on every channel, call
and process, with no state to store. Unknown visitors hash on their keyed identifier instead. Changing
``salt`` reshuffles everyone (a new experiment).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["ARMS", "ExperimentConfig", "ExperimentError", "assign_arm", "load_experiments", "parse_experiments"]

ARMS: tuple[str, ...] = ("champion", "challenger", "holdout")


class ExperimentError(ValueError):
    """experiments.yaml is invalid; the message names the key."""


@dataclass(frozen=True)
class ExperimentConfig:
    """``holdout`` and ``challenger`` are shares of persons in [0, 1); the rest is champion.
    ``shadow``: score the challenger for champion traffic too (logged, never served)."""

    name: str = "default"
    salt: str = "nba-experiment-1"
    holdout: float = 0.0
    challenger: float = 0.0
    shadow: bool = False

    def __post_init__(self):
        for key in ("holdout", "challenger"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ExperimentError(f"experiments.{key} must be a share in [0, 1), got {value!r}")
        if self.holdout + self.challenger >= 1:
            raise ExperimentError(f"experiments.holdout + challenger must be < 1, got "
                                  f"{self.holdout} + {self.challenger}")
        if not self.salt:
            raise ExperimentError("experiments.salt must be a non-empty string")


def bucket(salt: str, key: str) -> float:
    """Uniform in [0, 1) from SHA-256 of salt and key (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256(f"{salt}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_arm(key: str, config: ExperimentConfig, challenger_available: bool = True) -> str:
    """``holdout``, ``challenger`` or ``champion`` for a person key; without a loaded challenger its
    share is served by the champion (and labelled champion)."""
    u = bucket(config.salt, key)
    if u < config.holdout:
        return "holdout"
    if u < config.holdout + config.challenger and challenger_available:
        return "challenger"
    return "champion"


def parse_experiments(raw: dict | None) -> ExperimentConfig:
    raw = raw or {}
    unknown = sorted(set(raw) - {"name", "salt", "holdout", "challenger", "shadow"})
    if unknown:
        raise ExperimentError(f"experiments: unknown keys {unknown}")
    return ExperimentConfig(
        name=str(raw.get("name", "default")), salt=str(raw.get("salt", "nba-experiment-1")),
        holdout=raw.get("holdout", 0.0), challenger=raw.get("challenger", 0.0), shadow=bool(raw.get("shadow", False)),
    )


def load_experiments(path: Path) -> ExperimentConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ExperimentError(f"cannot read experiments {path}: {exc}") from exc
    return parse_experiments(raw)
