"""One small world shared by the simulator tests (fixed seed, built once per run)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from world_fixtures import SMALL, canonical

from simulator import World, simulate


@pytest.fixture(scope="session")
def world() -> World:
    return simulate(SMALL)


@pytest.fixture(scope="session")
def resolved(world: World) -> pd.DataFrame:
    """Unique raw events with parsed JSON and the true person key of their first identifier."""
    lookup = {(t, v): k for t, v, k in world.identifiers.itertuples(index=False)}
    events = world.events.drop_duplicates("event_id").reset_index(drop=True)
    events["ids"] = [json.loads(s) for s in events["identifiers"]]
    events["props"] = [json.loads(s) for s in events["properties"]]
    first = [next(iter(d.items())) for d in events["ids"]]
    events["person_key"] = [lookup.get((t, canonical(t, v))) for t, v in first]
    events["day"] = (events["ts"] - SMALL.start_ts).dt.total_seconds().to_numpy() / 86400.0
    assert np.all(events["day"] >= 0)
    return events
