"""Volume constraints: how many contacts per action and per outbound channel a day may carry.

Channel limits come from the outbound budget split by the budget bandit's shares
(``budget_bandit`` predictor ``.budget_shares()``), or explicit numbers in ``config/policies.yaml``;
action limits from each action's ``caps.daily``. The ledger counts what was actually chosen, shared by
every decision of the process and every row of a batch. Given ``used``, it starts each day from what is
already on record for it (the decision log): a restarted server, or a second campaign run the same day,
does not get the day's volume again.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from serving.candidates import Candidate
from serving.catalog import Action
from serving.policies import VolumeSettings

__all__ = ["VolumeLedger", "VolumePlan", "plan_volume"]


@dataclass(frozen=True)
class VolumePlan:
    """Daily limits; a missing key means unlimited."""

    action_daily: dict[str, int] = field(default_factory=dict)
    channel_daily: dict[str, int] = field(default_factory=dict)


def plan_volume(actions: Iterable[Action], settings: VolumeSettings, shares: Mapping[str, float] | None
                ) -> VolumePlan:
    """Limits per action (catalog ``caps.daily``) and per channel (explicit, else budget x share)."""
    channel_daily = dict(settings.channel_daily)
    if settings.daily_outbound is not None and settings.use_budget_shares and shares:
        for channel, share in shares.items():
            if channel not in channel_daily:
                channel_daily[channel] = int(math.floor(settings.daily_outbound
                                                        * max(float(share), settings.min_channel_share)))
    action_daily = {a.id: a.caps.daily for a in actions if a.caps.daily is not None}
    return VolumePlan(action_daily=action_daily, channel_daily=channel_daily)


class VolumeLedger:
    """Counts of chosen contacts per UTC day, per action and per channel (thread-safe)."""

    def __init__(self, plan: VolumePlan,
                 used: Callable[[date], Iterable[tuple[str, str, int]]] | None = None) -> None:
        self.plan = plan
        self.used_on = used  # (action_id, channel, contacts) already on record for a day
        self._day: date | None = None
        self._actions: dict[str, int] = defaultdict(int)
        self._channels: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def _roll(self, day: date) -> None:
        if day != self._day:
            self._day = day
            self._actions.clear()
            self._channels.clear()
            for action_id, channel, n in (self.used_on(day) if self.used_on is not None else ()):
                self._actions[action_id] += n
                self._channels[channel] += n

    def blocking_rule(self, candidate: Candidate, day: date) -> str | None:
        """Call under ``lock`` together with :meth:`add` so two requests cannot both take the last slot."""
        self._roll(day)
        limit = self.plan.action_daily.get(candidate.action.id)
        if limit is not None and self._actions[candidate.action.id] >= limit:
            return f"volume: action {candidate.action.id} daily limit {limit} reached"
        limit = self.plan.channel_daily.get(candidate.channel)
        if limit is not None and self._channels[candidate.channel] >= limit:
            return f"volume: channel {candidate.channel} daily limit {limit} reached"
        return None

    def add(self, candidate: Candidate, day: date) -> None:
        self._roll(day)
        self._actions[candidate.action.id] += 1
        self._channels[candidate.channel] += 1

    def used(self) -> dict[str, dict[str, int]]:
        return {"actions": dict(self._actions), "channels": dict(self._channels)}
