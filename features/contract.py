"""The lake event contract as a pydantic model: what every row ingestion keeps must satisfy.

Ingestion checks raw rows with vectorised rules (tens of millions of rows; a per-row model would be too
slow there) and then validates a deterministic sample of each batch's kept rows against this model, so a
rule that lets a bad row through fails loudly instead of writing it to the lake.
"""

from __future__ import annotations

import json
from typing import Literal

import pandas as pd
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from features.schema import CHANNELS, CONSENT_CHANNELS, EVENT_TYPES, ID_TYPES, LAKE_COLUMNS

Channel = Literal[CHANNELS]  # type: ignore[valid-type]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
SAMPLE_ROWS = 500


class LakeEvent(BaseModel):
    """One lake row: known channel and event type, aware timestamp, keyed identifiers, sane amounts."""

    model_config = ConfigDict(extra="forbid", strict=False)

    event_id: str = Field(min_length=1)
    ts: AwareDatetime
    channel: Channel
    event_type: EventType
    identifiers: str
    item_id: str | None = None
    category: str | None = None
    amount: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    order_id: str | None = None
    touch_id: str | None = None
    action_id: str | None = None
    consent_channel: str | None = None
    purpose: str | None = None
    granted: bool | None = None

    @field_validator("identifiers")
    @classmethod
    def _keyed_identifiers(cls, text: str) -> str:
        ids = json.loads(text)
        if not isinstance(ids, dict) or not ids:
            raise ValueError("identifiers must be a non-empty JSON object")
        unknown = set(ids) - set(ID_TYPES)
        if unknown:
            raise ValueError(f"unknown identifier types {sorted(unknown)}")
        for id_type, prefix in (("phone", "ph_"), ("email", "em_")):
            if id_type in ids and not str(ids[id_type]).startswith(prefix):
                raise ValueError(f"{id_type} must be keyed (start with {prefix!r}), not raw")
        return text

    @field_validator("consent_channel")
    @classmethod
    def _consent_channel(cls, value: str | None) -> str | None:
        if value is not None and value not in CONSENT_CHANNELS:
            raise ValueError(f"consent_channel must be one of {CONSENT_CHANNELS}, got {value!r}")
        return value


_ROWS = TypeAdapter(list[LakeEvent])


def validate_sample(lake: pd.DataFrame, rows: int = SAMPLE_ROWS) -> None:
    """Validate up to ``rows`` evenly spread kept rows against :class:`LakeEvent`; raise on the first bad one."""
    if lake.empty:
        return
    step = max(1, len(lake) // rows)
    sample = lake.iloc[::step][list(LAKE_COLUMNS)]
    records = sample.astype(object).where(sample.notna(), None).to_dict(orient="records")
    for record in records:
        if isinstance(record["ts"], pd.Timestamp):
            record["ts"] = record["ts"].to_pydatetime()
    _ROWS.validate_python(records)


__all__ = ["LakeEvent", "SAMPLE_ROWS", "validate_sample"]
