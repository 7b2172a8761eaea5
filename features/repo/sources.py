"""Parquet sources written by feature engineering: ``$NBA_HOME/features/<view>.parquet``."""

import os
from pathlib import Path

from feast import FileSource
from feast.data_format import ParquetFormat

_HOME = Path(os.environ.get("NBA_HOME") or Path(__file__).resolve().parents[2] / ".nba")


def _source(view: str) -> FileSource:
    return FileSource(
        name=f"{view}_source",
        path=str(_HOME / "features" / f"{view}.parquet"),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        description=f"Weekly point-in-time snapshots of {view}.",
    )


person_rfm_source = _source("person_rfm")
person_channel_engagement_source = _source("person_channel_engagement")
person_category_affinity_source = _source("person_category_affinity")
person_consent_source = _source("person_consent")
person_behaviour_source = _source("person_behaviour")
person_value_source = _source("person_value")
