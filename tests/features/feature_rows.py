"""Hand-made raw events in the raw schema (features.schema.RAW_COLUMNS), shared by the feature tests.

A plain module (not conftest) so tests import it by a name no other test folder uses."""

from __future__ import annotations

import json

import pandas as pd

SALT = b"test-salt-not-secret"
RAW_PHONE = "138 0013 8000"
RAW_EMAIL = "Alice.Wang@Example.com"


def raw_event(event_id, ts, channel="web", event_type="page_view", identifiers=None, properties=None):
    """One raw row; identifiers/properties given as dicts are serialised, strings are kept as they are."""
    ids = {"cookie_id": "c-1"} if identifiers is None else identifiers
    props = {} if properties is None else properties
    return {
        "event_id": event_id,
        "ts": pd.Timestamp(ts, tz="UTC") if ts is not None else pd.NaT,
        "channel": channel,
        "event_type": event_type,
        "identifiers": ids if isinstance(ids, str) else json.dumps(ids),
        "properties": props if isinstance(props, str) else json.dumps(props),
    }


def raw_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame
