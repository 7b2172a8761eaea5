"""Contact and arbitration policies from ``config/policies.yaml``: typed, validated, errors name the key.

Marketing ops change these without code: consent rules per purpose, per-person caps per channel and
period, quiet hours, suppression after rejections, context weights, exploration and volume limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from features.schema import CHANNELS, CONSENT_CHANNELS

__all__ = [
    "ALL_CHANNELS", "ChannelCap", "Exploration", "Policies", "PolicyError", "QuietHours", "Suppression",
    "VolumeSettings", "load_policies", "parse_policies",
]

ALL_CHANNELS = "all"
QUIET_MODES = ("suppress", "defer")


class PolicyError(ValueError):
    """policies.yaml is invalid; the message names the key."""


@dataclass(frozen=True)
class ChannelCap:
    """At most ``max`` outbound contacts per person on ``channel`` (or ``all``) within ``days``."""

    channel: str
    max: int
    days: int


@dataclass(frozen=True)
class QuietHours:
    """Local-time window [start, end) when outbound channels must not interrupt; ``modes`` per channel:
    ``suppress`` drops the candidate, ``defer`` keeps it with a ``send_after`` time."""

    start: time
    end: time
    modes: dict[str, str]

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class Suppression:
    """Suppress an action for a person after ``rejections`` dismissals/opt-outs within ``days``."""

    rejections: int = 2
    days: int = 30


@dataclass(frozen=True)
class Exploration:
    """Thompson sampling on propensity: Beta(p n, (1 - p) n) with effective sample size n.

    New actions (launched within ``ramp_days``) use a smaller n, growing linearly from
    ``new_action_sample_size`` to ``effective_sample_size``: more exploration while immature.
    """

    enabled: bool = True
    effective_sample_size: float = 200.0
    new_action_sample_size: float = 10.0
    ramp_days: float = 30.0
    seed: int = 0


@dataclass(frozen=True)
class VolumeSettings:
    """Daily volume limits: per channel explicitly, or ``daily_outbound`` x the bandit's budget share
    (floored at ``min_channel_share`` so a channel the bandit rates low keeps a trickle for learning)."""

    daily_outbound: int | None = None
    use_budget_shares: bool = True
    min_channel_share: float = 0.0
    channel_daily: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Policies:
    outbound_channels: tuple[str, ...] = CONSENT_CHANNELS
    consent: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "marketing": ("consent_{channel}",), "service": ("consent_{channel}_service", "consent_{channel}")})
    caps: tuple[ChannelCap, ...] = ()
    quiet_hours: QuietHours | None = None
    default_timezone: str = "UTC"
    suppression: Suppression = field(default_factory=Suppression)
    context_weights: dict[str, float] = field(default_factory=dict)
    exploration: Exploration = field(default_factory=Exploration)
    volume: VolumeSettings = field(default_factory=VolumeSettings)

    def history_days(self, action_days: int = 0) -> int:
        """How far back the contact history must be read for every rule to be checked."""
        return max([c.days for c in self.caps] + [self.suppression.days, action_days, 1])


def _int(raw: dict, key: str, where: str, default=None, minimum: int = 0) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < minimum:
        raise PolicyError(f"{where}.{key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _float(raw: dict, key: str, where: str, default: float, minimum: float = 0.0) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise PolicyError(f"{where}.{key} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _channel(name, where: str, allow_all: bool = False) -> str:
    if name in CHANNELS or (allow_all and name == ALL_CHANNELS):
        return name
    raise PolicyError(f"{where}: unknown channel {name!r}; expected one of {list(CHANNELS)}"
                      + (" or 'all'" if allow_all else ""))


def _clock(value, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise PolicyError(f"{where} must be a time like '21:00', got {value!r}") from None


def _timezone(value, where: str) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"{where}: unknown time zone {value!r}") from None
    return str(value)


def parse_policies(raw: dict | None) -> Policies:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise PolicyError("policies must be a mapping")
    outbound = tuple(_channel(c, "outbound_channels") for c in raw.get("outbound_channels", CONSENT_CHANNELS))
    consent = Policies().consent
    for purpose, templates in (raw.get("consent") or {}).items():
        if not isinstance(templates, list) or not templates or not all("{channel}" in str(t) for t in templates):
            raise PolicyError(f"consent.{purpose} must be a list of feature names with '{{channel}}'")
        consent = {**consent, purpose: tuple(str(t) for t in templates)}
    caps = []
    for i, cap in enumerate(raw.get("caps") or []):
        where = f"caps[{i}]"
        if not isinstance(cap, dict):
            raise PolicyError(f"{where} must be a mapping with channel, max, days")
        caps.append(ChannelCap(channel=_channel(cap.get("channel"), f"{where}.channel", allow_all=True),
                               max=_int(cap, "max", where), days=_int(cap, "days", where, minimum=1) or 1))
    quiet = None
    if raw.get("quiet_hours"):
        q = raw["quiet_hours"]
        modes = {}
        for ch, mode in (q.get("channels") or {}).items():
            _channel(ch, "quiet_hours.channels")
            if mode not in QUIET_MODES:
                raise PolicyError(f"quiet_hours.channels.{ch} must be one of {list(QUIET_MODES)}, got {mode!r}")
            modes[ch] = mode
        quiet = QuietHours(start=_clock(q.get("start"), "quiet_hours.start"),
                           end=_clock(q.get("end"), "quiet_hours.end"), modes=modes)
    s = raw.get("suppression") or {}
    e = raw.get("exploration") or {}
    v = raw.get("volume") or {}
    weights = {_channel(ch, "context_weights"): _float(raw["context_weights"], ch, "context_weights", 1.0)
               for ch in (raw.get("context_weights") or {})}
    return Policies(
        outbound_channels=outbound,
        consent=consent,
        caps=tuple(caps),
        quiet_hours=quiet,
        default_timezone=_timezone(raw.get("default_timezone", "UTC"), "default_timezone"),
        suppression=Suppression(rejections=_int(s, "rejections", "suppression", 2, minimum=1),
                                days=_int(s, "days", "suppression", 30, minimum=1)),
        context_weights=weights,
        exploration=Exploration(
            enabled=bool(e.get("enabled", True)),
            effective_sample_size=_float(e, "effective_sample_size", "exploration", 200.0, 1.0),
            new_action_sample_size=_float(e, "new_action_sample_size", "exploration", 10.0, 1.0),
            ramp_days=_float(e, "ramp_days", "exploration", 30.0, 0.0),
            seed=_int(e, "seed", "exploration", 0),
        ),
        volume=VolumeSettings(
            daily_outbound=_int(v, "daily_outbound", "volume"),
            use_budget_shares=bool(v.get("use_budget_shares", True)),
            min_channel_share=_float(v, "min_channel_share", "volume", 0.0),
            channel_daily={_channel(ch, "volume.channel_daily"): _int(v["channel_daily"], ch, "volume.channel_daily")
                           for ch in (v.get("channel_daily") or {})},
        ),
    )


def load_policies(path: Path) -> Policies:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"cannot read policies {path}: {exc}") from exc
    return parse_policies(raw)
