"""The traps of real data are in the world and in its ground truth: shared tablets, kiosks and assistant
terminals, recycled phones, clock skew, late and duplicated events, consent changes; and nearly every
identifier is tied to another of its person's identifiers (only ~1% of persons stay anonymous)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from world_fixtures import SMALL, canonical

from simulator import WorldConfig, stream_world
from simulator.identities import canonical_phone


def _id_rows(world, resolved) -> pd.DataFrame:
    rows = [(eid, t, canonical(t, v), key) for eid, ids, key in
            zip(resolved["event_id"], resolved["ids"], resolved["person_key"], strict=True)
            for t, v in ids.items()]
    return pd.DataFrame(rows, columns=["event_id", "id_type", "id_value", "person_key"])


def test_store_kiosks_and_terminals_are_used_by_many(world, resolved):
    shared = world.shared_identifiers
    assert {"store_kiosk", "assistant_terminal", "family_tablet"} <= set(shared["kind"])
    ids = _id_rows(world, resolved)
    hubs = shared[shared["kind"].isin(["store_kiosk", "assistant_terminal"])]
    users = ids.merge(hubs, on=["id_type", "id_value"]).groupby("id_value")["person_key_x"].nunique()
    assert len(users) == len(hubs) and users.min() >= 2
    assert users[hubs.loc[hubs["kind"] == "assistant_terminal", "id_value"]].min() > 20
    assert not set(hubs["id_value"]) & set(world.identifiers["id_value"])  # nobody's own identifier


def test_family_tablets_show_several_persons(world, resolved):
    tablets = world.shared_identifiers[world.shared_identifiers["kind"] == "family_tablet"]
    per_tablet = tablets.groupby("id_value")["person_key"].nunique()
    assert len(per_tablet) >= 3 and per_tablet.between(2, 3).all()
    ids = _id_rows(world, resolved)
    seen = ids.merge(tablets[["id_value"]].drop_duplicates(), on="id_value")
    assert (seen.groupby("id_value")["person_key"].nunique() >= 2).any()
    owners = world.identifiers[world.identifiers["shared"]]
    assert set(owners["id_value"]) == set(per_tablet.index)


def test_recycled_phone_has_two_holders_with_validity(world, resolved):
    ident = world.identifiers
    phones = ident[ident["id_type"] == "phone"]
    recycled = phones[phones.duplicated("id_value", keep=False)].sort_values(["id_value", "valid_from"])
    assert recycled["id_value"].nunique() >= 1
    for number, g in recycled.groupby("id_value"):
        old = g[g["valid_to"].notna()].iloc[0]
        new = g[g["valid_from"].notna()].iloc[0]
        assert old["valid_to"] == new["valid_from"] and old["person_key"] != new["person_key"]
        used = resolved[resolved["ids"].map(lambda d, n=number: "phone" in d and canonical("phone", d["phone"]) == n)]
        assert (used.loc[used["ts"] >= new["valid_from"], "person_key"] == new["person_key"]).all()
        assert (used.loc[used["ts"] < old["valid_to"], "person_key"] == old["person_key"]).all()
        assert (used["person_key"] == new["person_key"]).any()
    assert canonical_phone("13800138000") == "+8613800138000"


def test_clock_skew_late_and_duplicate_events_recorded(world):
    traps = world.traps
    counts = traps["trap"].value_counts()
    assert {"clock_skew", "late_arrival", "duplicate", "store_kiosk"} <= set(counts.index)
    table = world.table.drop_duplicates("event_id").set_index("event_id")
    late = table.loc[traps.loc[traps["trap"] == "late_arrival", "event_id"]]
    assert (late["arrival_ts"].dt.floor("D") > late["ts"].dt.floor("D")).mean() > 0.9
    assert (late["arrival_ts"] - late["ts"]).min() >= pd.Timedelta(days=1)
    dup_ids = world.events.loc[world.events["event_id"].duplicated(), "event_id"]
    assert set(dup_ids) <= set(traps.loc[traps["trap"] == "duplicate", "event_id"])
    skew = traps[traps["trap"] == "clock_skew"]
    assert skew["detail"].str.endswith(" s").all()
    assert (world.events.set_index("event_id").loc[skew["event_id"], "channel"] == "app").all()


def test_consent_withdrawn_and_given_again(resolved):
    consent = resolved[resolved["event_type"] == "consent"].copy()
    consent["granted"] = consent["props"].map(lambda p: p["granted"])
    consent["channel_c"] = consent["props"].map(lambda p: p["consent_channel"])
    seq = consent.sort_values("ts").groupby(["person_key", "channel_c"])["granted"].apply(tuple)
    assert seq.map(lambda s: len(s) >= 3 and s[-3:] == (True, False, True)).any()


def test_nearly_every_identifier_is_tied_to_another_of_its_person(world, resolved):
    ids = _id_rows(world, resolved)
    shared = set(world.shared_identifiers["id_value"])
    ids = ids[~ids["id_value"].isin(shared)]
    per_event = ids.groupby("event_id")["id_value"].transform("size")
    linked = set(ids.loc[per_event > 1, "id_value"])
    holders = ids.groupby("person_key")["id_value"].nunique()
    multi = ids[ids["person_key"].isin(holders[holders > 1].index)]
    share = multi["id_value"].drop_duplicates().isin(linked).mean()
    assert share > 0.98, share


def _tree(folder) -> str:
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_stream_world_is_deterministic_and_matches_in_memory(tmp_path):
    config = WorldConfig(customers=120, days=35, seed=9)
    a = stream_world(config, tmp_path / "a" / "raw", tmp_path / "a" / "truth")
    stream_world(config, tmp_path / "b" / "raw", tmp_path / "b" / "truth")
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert a["events"] > 1000 and a["files"] > 100
    other = WorldConfig(customers=120, days=35, seed=10)
    stream_world(other, tmp_path / "c" / "raw", tmp_path / "c" / "truth")
    assert _tree(tmp_path / "c") != _tree(tmp_path / "a")
    ids = pd.read_parquet(tmp_path / "a" / "truth" / "identifiers.parquet")
    assert ids["person_key"].nunique() == 120
    assert np.isin(["T00001", "T00120"], ids["person_key"]).all()
    assert SMALL.customers == 800


def test_chunks_of_persons_never_collide(monkeypatch):
    import simulator.world as world_module

    monkeypatch.setattr(world_module, "CHUNK_PERSONS", 50)
    world = world_module.simulate(WorldConfig(customers=120, days=35, seed=9))
    ident = world.identifiers[world.identifiers["valid_from"].isna()]
    assert ident["person_key"].nunique() == 120
    assert not ident.duplicated(["id_type", "id_value"]).any()
    assert world.events.drop_duplicates()["event_id"].is_unique
    assert world.responses["touch_id"].is_unique
