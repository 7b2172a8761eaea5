"""Ingestion: each kind of bad row is quarantined under its reason, valid rows reach the lake keyed,
re-ingesting changes nothing, and no raw phone or e-mail is written anywhere."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from feature_rows import RAW_EMAIL, RAW_PHONE, raw_event, raw_frame

from features.ingest import ingest, read_lake
from features.privacy import key_identifier
from features.schema import LAKE_COLUMNS

NOW = pd.Timestamp("2026-03-01", tz="UTC")
VALID = [
    raw_event("e1", "2026-01-02 10:00", "web", "page_view", {"cookie_id": "c-1"}),
    raw_event("e2", "2026-01-03 10:00", "pos", "order", {"phone": RAW_PHONE, "pos_card": "PC9"},
              {"order_id": "o1", "item_id": "i7", "category": "shoes", "amount": 120.5}),
    raw_event("e3", "2026-01-04 10:00", "email", "consent", {"email": RAW_EMAIL},
              {"consent_channel": "email", "purpose": "marketing", "granted": True}),
    raw_event("e4", "2026-01-05 10:00", "sms", "conversion", {"phone": "+86 138-0013-8000"},
              {"touch_id": "t1", "action_id": "discount_10", "amount": 0}),
]
# (row, reason): one row per kind of bad input; raw PII appears in several of them on purpose.
BAD = [
    (raw_event("b1", None), "bad_ts"),
    (raw_event("b2", "2026-09-01"), "future_ts"),
    (raw_event("b3", "2026-01-02", channel="fax", identifiers={"phone": "13900139000"}), "unknown_channel"),
    (raw_event("b4", "2026-01-02", event_type="teleport"), "unknown_event_type"),
    (raw_event("b5", "2026-01-02", identifiers={}), "no_identifiers"),
    (raw_event("b6", "2026-01-02", identifiers={"phone": "", "email": None}), "no_identifiers"),
    (raw_event("b7", "2026-01-02", identifiers={"phone": "139-0013-900x"}), "bad_phone"),
    (raw_event("b8", "2026-01-02", identifiers={"email": "bob.li@@example.com"}), "bad_email"),
    (raw_event("b9", "2026-01-02", "pos", "order", {"phone": "13700137000"}, {"amount": -5}), "bad_amount"),
    (raw_event("b10", "2026-01-02", "pos", "order", {"pos_card": "PC1"}, {"amount": "lots"}), "bad_amount"),
    (raw_event("b11", "2026-01-02", "sms", "conversion", {"pos_card": "PC1"}, {}), "bad_amount"),
    (raw_event("b12", "2026-01-02", identifiers='{"phone": "13600136000"'), "malformed_json"),
    (raw_event("b13", "2026-01-02", properties="[1, 2"), "malformed_json"),
    (raw_event(None, "2026-01-02"), "missing_event_id"),
    (raw_event("b15", "2026-01-02", identifiers={"passport": "13500135000"}), "unknown_id_type"),
]
RAW_PII = ["13800138000", "138 0013 8000", "138-0013-8000", "13900139000", "139-0013-900x", "13700137000",
           "13600136000", "13500135000", "alice.wang@example.com", "bob.li@@example.com"]


def _tree_digest(folder) -> str:
    """Digest of every file (path and bytes) under a folder: equal digests mean nothing changed."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


def _expected_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, reason in BAD:
        counts[reason] = counts.get(reason, 0) + 1
    return counts


@pytest.fixture
def raw_file(tmp_path):
    path = tmp_path / "raw" / "events.parquet"
    path.parent.mkdir()
    raw_frame([*VALID, *[row for row, _ in BAD]]).to_parquet(path, index=False)
    return path


def test_bad_rows_quarantined_by_reason_and_valid_rows_kept(tmp_path, raw_file, salt):
    report = ingest([raw_file], tmp_path / "lake", tmp_path / "quarantine", salt, now=NOW)
    assert report.quarantined == _expected_counts()
    assert report.rows_read == len(VALID) + len(BAD)
    assert report.rows_kept == len(VALID) and report.duplicates == 0
    assert report.rows_read == report.rows_kept + report.duplicates + report.rows_quarantined

    lake = read_lake(tmp_path / "lake")
    assert list(lake.columns) == list(LAKE_COLUMNS)
    assert sorted(lake["event_id"]) == ["e1", "e2", "e3", "e4"]
    assert str(lake["ts"].dtype) == "datetime64[ns, UTC]"
    order = lake.set_index("event_id").loc["e2"]
    assert order["amount"] == 120.5 and order["category"] == "shoes" and order["order_id"] == "o1"
    ids = json.loads(order["identifiers"])
    assert ids == {"phone": key_identifier("phone", RAW_PHONE, salt), "pos_card": "PC9"}
    # two spellings of one phone → one key
    assert json.loads(lake.set_index("event_id").loc["e4", "identifiers"])["phone"] == ids["phone"]
    consent = lake.set_index("event_id").loc["e3"]
    assert bool(consent["granted"]) is True and consent["consent_channel"] == "email"

    quarantine = pd.read_parquet(tmp_path / "quarantine" / "quarantine.parquet")
    assert quarantine["reason"].value_counts().to_dict() == _expected_counts()


def test_reingest_changes_nothing(tmp_path, raw_file, salt):
    ingest([raw_file], tmp_path / "lake", tmp_path / "quarantine", salt, now=NOW)
    lake_bytes = _tree_digest(tmp_path / "lake")
    quarantine_rows = len(pd.read_parquet(tmp_path / "quarantine" / "quarantine.parquet"))
    again = ingest([raw_file], tmp_path / "lake", tmp_path / "quarantine", salt, now=NOW)
    assert again.rows_kept == 0 and again.duplicates == len(VALID)
    assert again.quarantined == _expected_counts()
    assert _tree_digest(tmp_path / "lake") == lake_bytes
    assert len(pd.read_parquet(tmp_path / "quarantine" / "quarantine.parquet")) == quarantine_rows


def test_new_file_merges_and_in_batch_duplicates_count(tmp_path, raw_file, salt):
    ingest([raw_file], tmp_path / "lake", tmp_path / "quarantine", salt, now=NOW)
    more = tmp_path / "raw" / "more.parquet"
    raw_frame([raw_event("e5", "2026-01-06"), raw_event("e5", "2026-01-06"), VALID[0]]).to_parquet(more)
    report = ingest([more], tmp_path / "lake", tmp_path / "quarantine", salt, now=NOW)
    assert (report.rows_kept, report.duplicates) == (1, 2)
    lake = read_lake(tmp_path / "lake")
    assert sorted(lake["event_id"]) == ["e1", "e2", "e3", "e4", "e5"]
    assert lake["ts"].is_monotonic_increasing


def test_csv_and_json_lines_with_malformed_line(tmp_path, salt):
    rows = [VALID[0], VALID[1]]
    csv_path = tmp_path / "batch.csv"
    frame = raw_frame(rows)
    frame["ts"] = frame["ts"].map(lambda t: t.isoformat())
    frame.to_csv(csv_path, index=False)
    jsonl = tmp_path / "batch.jsonl"
    lines = [json.dumps({**VALID[2], "ts": "2026-01-04T10:00:00Z", "identifiers": {"email": RAW_EMAIL},
                         "properties": json.loads(VALID[2]["properties"])}),
             '{"event_id": "x1", "ts": "2026-01-04", "identifiers": {"phone": "13800138000"',
             '"just a string"']
    jsonl.write_text("\n".join(lines) + "\n")
    report = ingest([csv_path, jsonl], tmp_path / "lake", tmp_path / "q", salt, now=NOW)
    assert report.rows_kept == 3 and report.quarantined == {"malformed_json": 2}
    lake = read_lake(tmp_path / "lake")
    assert lake.set_index("event_id").loc["e2", "amount"] == 120.5
    assert lake["ts"].min() == pd.Timestamp("2026-01-02 10:00", tz="UTC")


def _strings(path) -> list[str]:
    frame = pd.read_parquet(path)
    return [str(v) for col in frame.columns for v in frame[col].dropna()]


def test_no_raw_phone_or_email_in_written_files(tmp_path, raw_file, salt):
    ingest([raw_file], tmp_path / "lake", tmp_path / "quarantine", salt, now=NOW)
    written = [*sorted((tmp_path / "lake").rglob("*.parquet")), tmp_path / "quarantine" / "quarantine.parquet"]
    assert len(written) > 2
    for path in written:
        data = path.read_bytes().decode("latin-1").lower()
        cells = " ".join(_strings(path)).lower()
        for pii in RAW_PII:
            assert pii.lower() not in data, f"{pii} in bytes of {path.name}"
            assert pii.lower() not in cells, f"{pii} in cells of {path.name}"
            assert pii.replace(" ", "").replace("-", "") not in cells.replace(" ", "").replace("-", "")
