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


def person_lookup(world: World):
    """(id_type, raw value, ts) -> true person: shared kiosks/terminals/tablets give None, recycled phones
    the holder at that time."""
    shared = {(t, v) for t, v in world.shared_identifiers[["id_type", "id_value"]].itertuples(index=False)}
    rows: dict[tuple[str, str], list] = {}
    for r in world.identifiers.itertuples(index=False):
        rows.setdefault((r.id_type, r.id_value), []).append(r)

    def person(id_type: str, value: str, ts: pd.Timestamp) -> str | None:
        c = canonical(id_type, value)
        if (id_type, c) in shared:
            return None
        for r in rows[(id_type, c)]:  # KeyError = identifier of nobody
            if (pd.isna(r.valid_from) or ts >= r.valid_from) and (pd.isna(r.valid_to) or ts < r.valid_to):
                return r.person_key
        raise AssertionError(f"{id_type} {value} used at {ts} outside every holder's validity")

    return person


@pytest.fixture(scope="session")
def resolved(world: World) -> pd.DataFrame:
    """Unique raw events with parsed JSON and the true person (from their personal identifiers)."""
    person = person_lookup(world)
    events = world.events.drop_duplicates("event_id").reset_index(drop=True)
    events["ids"] = [json.loads(s) for s in events["identifiers"]]
    events["props"] = [json.loads(s) for s in events["properties"]]
    keys = [{person(t, v, ts) for t, v in ids.items()} - {None}
            for ids, ts in zip(events["ids"], events["ts"], strict=True)]
    events["id_persons"] = keys
    truth = world.table.drop_duplicates("event_id").set_index("event_id")["person_key"]
    events["person_key"] = events["event_id"].map(truth)
    skew = world.traps.loc[world.traps["trap"] == "clock_skew", "event_id"]
    events = events[~events["event_id"].isin(skew)].reset_index(drop=True)
    events["day"] = (events["ts"] - SMALL.start_ts).dt.total_seconds().to_numpy() / 86400.0
    assert np.all(events["day"] >= 0)
    return events
