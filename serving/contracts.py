"""Typed request and response models of the decision API (the contract channel apps code against)."""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.schema import CHANNELS, ID_TYPES

MAX_LIMIT = 20
OUTCOMES = ("impression", "open", "click", "conversion", "dismiss", "opt_out")


def new_decision_id() -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits: 48 bits of Unix milliseconds, then 74 random bits.

    Time-ordered ids make the decision log's primary-key index grow at its end; random ones (uuid4)
    dirtied a different index page per decision, each written whole to the log's WAL at commit."""
    value = (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76   # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62   # RFC 4122 variant
    return f"{value:032x}"


class _Strict(BaseModel):
    # Unknown fields are a client bug worth surfacing, not something to ignore.
    model_config = ConfigDict(extra="forbid")


class Customer(_Strict):
    id_type: str = Field(description=f"one of {', '.join(ID_TYPES)}")
    id: str = Field(min_length=1, max_length=256)

    @field_validator("id_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in ID_TYPES:
            raise ValueError(f"unknown id_type {value!r}; expected one of {list(ID_TYPES)}")
        return value


def check_channel(value: str | None) -> str | None:
    if value is not None and value not in CHANNELS:
        raise ValueError(f"unknown channel {value!r}; expected one of {list(CHANNELS)}")
    return value


class DecideRequest(_Strict):
    customer: Customer
    channel: str | None = Field(default=None, description="channel asking; omit to choose across channels")
    placement: str | None = Field(default=None, max_length=128)
    context: dict[str, str | int | float | bool] = Field(default_factory=dict)
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT)

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str | None) -> str | None:
        return check_channel(value)


class ActionDecision(BaseModel):
    action_id: str
    channel: str
    score: float = Field(description="arbitration priority P x C x V x L")
    propensity: float
    value: float
    reasons: list[str]
    payload: dict


class ShadowAction(BaseModel):
    action_id: str
    channel: str
    score: float
    propensity: float


class ShadowResult(BaseModel):
    """What the challenger would have answered for a champion-arm request: scored and logged, not served."""

    model_versions: dict[str, str]
    actions: list[ShadowAction]


class Decision(BaseModel):
    decision_id: str
    person_id: str | None
    actions: list[ActionDecision]
    model_versions: dict[str, str]
    experiment_arm: str
    degraded: bool
    cold_start: bool
    degraded_reason: str | None = Field(
        default=None, description="when degraded: what was unavailable (online store, models)"
    )
    # Excluded from the response: the service writes it to the decision log only.
    shadow: ShadowResult | None = Field(default=None, exclude=True)


class FeedbackRequest(_Strict):
    decision_id: str = Field(min_length=1, max_length=64)
    action_id: str = Field(min_length=1, max_length=128)
    outcome: Literal["impression", "open", "click", "conversion", "dismiss", "opt_out"]
    value: float | None = Field(default=None, ge=0)
    ts: datetime | None = None


class FeedbackAck(BaseModel):
    decision_id: str
    action_id: str
    outcome: str
    duplicate: bool


class CandidateExplanation(BaseModel):
    action_id: str
    channel: str
    purpose: str
    chosen: bool
    stage: str | None = Field(description="funnel stage that removed the candidate; null when chosen")
    removed_by: str | None = Field(description="the rule that removed it; null when chosen")
    factors: dict[str, float | None]
    reasons: list[str]


class Explanation(BaseModel):
    """The whole decision funnel for one customer (POST /explain): never logged, never learned from."""

    person_id: str | None
    experiment_arm: str
    cold_start: bool
    timezone: str
    scores: dict[str, float]
    model_versions: dict[str, str]
    stages: list[str]
    candidates: list[CandidateExplanation]
    chosen: list[ActionDecision]


MAX_BATCH = 1000


class DecideBatchRequest(_Strict):
    """POST /decide_batch: many customers in one call (outbound runs); caps and volume hold across them."""

    requests: list[DecideRequest] = Field(min_length=1, max_length=MAX_BATCH)


class DecideBatchResponse(BaseModel):
    decisions: list[Decision]
