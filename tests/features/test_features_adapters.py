"""Adapters: each channel format (CSV, JSON lines, parquet) reaches the one event schema; simulated
per-channel files are ingested without losing a row; dirty amounts and local times are parsed."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from features.adapters import raw_sources, read_raw, read_wide
from features.ingest import ingest, parse_amount, read_lake
from features.schema import LAKE_COLUMNS, RAW_COLUMNS
from simulator import WorldConfig, simulate, write_world

NOW = pd.Timestamp("2026-12-31", tz="UTC")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    world = simulate(WorldConfig(customers=300, days=40, seed=5))
    write_world(world, root / "raw", root / "truth")
    return world, root


def test_amount_spellings():
    got = parse_amount(pd.Series(["¥1,299.00", "1299.00", " 12.5 ", None, "lots", "-3"]))
    assert got.iloc[0] == got.iloc[1] == 1299.0 and got.iloc[2] == 12.5
    assert got.iloc[3] != got.iloc[3] and got.iloc[4] != got.iloc[4] and got.iloc[5] == -3


def test_pos_csv_local_time_and_yuan(tmp_path):
    folder = tmp_path / "raw" / "pos" / "date=2026-01-02"
    folder.mkdir(parents=True)
    path = folder / "part-00000.csv"
    path.write_text("txn_id,txn_time,txn_type,mobile,card_no,member_no,store_id,order_id,amount\n"
                    "t1,2026-01-02 18:00:00,order,+86 138 0013 8000,,M1,S0001,o1,\"¥1,299.00\"\n")
    wide = read_wide(path)
    assert wide.loc[0, "ts"] == pd.Timestamp("2026-01-02 10:00", tz="UTC")
    assert wide.loc[0, "channel"] == "pos" and wide.loc[0, "id_phone"] == "+86 138 0013 8000"
    report = ingest([path], tmp_path / "lake", tmp_path / "q", b"s", now=NOW)
    assert report.rows_kept == 1
    assert read_lake(tmp_path / "lake").loc[0, "amount"] == 1299.0


def test_every_format_present_and_nothing_lost(written, salt):
    world, root = written
    sources = raw_sources(root / "raw")
    assert {p.suffix for p in sources} == {".csv", ".jsonl", ".parquet"}
    assert {p.relative_to(root / "raw").parts[0] for p in sources} == set(world.events["channel"])
    raw = read_raw(sources)
    assert list(raw.columns) == list(RAW_COLUMNS)
    assert len(raw) == len(world.events)
    assert set(raw["event_id"]) == set(world.events["event_id"])
    report = ingest(sources, root / "lake", root / "quarantine", salt, now=NOW)
    unique = world.events["event_id"].nunique()
    assert report.rows_read == len(world.events)
    assert report.quarantined == {}
    assert report.rows_kept == unique and report.duplicates == len(world.events) - unique
    lake = read_lake(root / "lake")
    assert list(lake.columns) == list(LAKE_COLUMNS) and lake["event_id"].is_unique
    orders = lake[lake["event_type"] == "order"]
    assert orders["amount"].gt(0).all()
    assert len(list((root / "lake" / "events").glob("date=*"))) >= 30
    again = ingest(sources, root / "lake", root / "quarantine", salt, now=NOW)
    assert again.rows_kept == 0 and again.duplicates == len(world.events)


def test_raw_identifiers_read_back_as_logged(written):
    world, root = written
    raw = read_raw(raw_sources(root / "raw")).drop_duplicates("event_id").set_index("event_id")
    truth = world.events.drop_duplicates("event_id").set_index("event_id")
    sample = truth.index[:200]
    for eid in sample:  # adapters strip surrounding whitespace; case and punctuation stay as logged
        logged = {k: v.strip() for k, v in json.loads(truth.loc[eid, "identifiers"]).items()}
        assert json.loads(raw.loc[eid, "identifiers"]) == logged


@pytest.mark.parametrize(("change", "needle"), [
    ({"channel": "fax"}, "channel"),
    ({"event_type": "teleport"}, "event_type"),
    ({"amount": -1.0}, "amount"),
    ({"identifiers": '{"phone": "13800138000"}'}, "keyed"),
    ({"identifiers": "{}"}, "non-empty"),
    ({"consent_channel": "pos"}, "consent_channel"),
])
def test_lake_contract_rejects_what_rules_must_catch(change, needle):
    from pydantic import ValidationError

    from features.contract import validate_sample

    row = {c: None for c in LAKE_COLUMNS}
    row.update(event_id="e1", ts=pd.Timestamp("2026-01-02", tz="UTC"), channel="pos", event_type="order",
               identifiers='{"phone": "ph_abc"}', amount=3.0)
    validate_sample(pd.DataFrame([row]))
    with pytest.raises(ValidationError, match=needle):
        validate_sample(pd.DataFrame([{**row, **change}]))


def test_channel_files_quarantine_bad_rows_by_reason(tmp_path, salt):
    pos = tmp_path / "raw" / "pos" / "date=2026-01-02" / "part-00000.csv"
    pos.parent.mkdir(parents=True)
    pos.write_text(
        "txn_id,txn_time,txn_type,mobile,card_no,member_no,store_id,order_id,amount\n"
        "ok1,2026-01-02 18:00:00,order,138-0013-8000,,M1,S0001,o1,\"¥1,299.00\"\n"
        "ok2,2026-01-02 18:05:00,order,,PC1,,S0001,o2,1299.00\n"
        "b1,,order,13800138000,,,S0001,o3,5.00\n"
        "b2,2027-06-01 10:00:00,order,13800138000,,,S0001,o4,5.00\n"
        "b3,2026-01-02 18:00:00,order,139-0013-900x,,,S0001,o5,5.00\n"
        "b4,2026-01-02 18:00:00,order,13800138000,,,S0001,o6,¥abc\n"
        "b5,2026-01-02 18:00:00,refund,13800138000,,,S0001,o7,5.00\n"
        ",2026-01-02 18:00:00,order,13800138000,,,S0001,o8,5.00\n"
        "b7,2026-01-02 18:00:00,order,,,,S0001,o9,5.00\n")
    web = tmp_path / "raw" / "web" / "date=2026-01-02" / "part-00000.jsonl"
    web.parent.mkdir(parents=True)
    web.write_text('{"eid": "w1", "time": "2026-01-02T08:00:00+08:00", "event": "page_view", "cookie_id": "c1"}\n'
                   '{"eid": "w2", "time": "2026-01-02T08:00:00+08:00", "event": "login", "email": "a@@b.com"}\n'
                   '{"eid": "w3", "time": "2026-01-02T08:00:00+08:00"\n')
    report = ingest(raw_sources(tmp_path / "raw"), tmp_path / "lake", tmp_path / "q", salt,
                    now=pd.Timestamp("2026-03-01", tz="UTC"))
    assert report.rows_read == 12 and report.rows_kept == 3
    assert report.quarantined == {"bad_amount": 1, "bad_email": 1, "bad_phone": 1, "bad_ts": 1, "future_ts": 1,
                                  "malformed_json": 1, "missing_event_id": 1, "no_identifiers": 1,
                                  "unknown_event_type": 1}
    assert sorted(read_lake(tmp_path / "lake")["event_id"]) == ["ok1", "ok2", "w1"]
