"""The fast SQLite materialization writes what Feast's own materialize writes: same rows, same reads."""

from __future__ import annotations

import sqlite3
import sys

import numpy as np
import pandas as pd
import pytest
from test_features_engineering import EVENTS, day

from config import load_settings
from features.engineering import VIEW_FEATURES, build_feature_snapshots, write_feature_tables
from features.materialize import fast_materialize, latest_rows
from features.store import apply, materialize, online_features, open_store

pytestmark = pytest.mark.integration


def _rows(settings) -> dict[str, list]:
    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT entity_key, feature_name, value, value_text, event_ts, created_ts '
                                f'FROM "{t}" ORDER BY entity_key, feature_name').fetchall() for t in tables}


def _clear(settings) -> None:
    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            conn.execute(f'DELETE FROM "{t}"')


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("NBA_HOME", str(tmp_path_factory.mktemp("nba-home")))
    settings = load_settings("embedded")
    frames = build_feature_snapshots(EVENTS, [day(60), day(120), day(160)])
    # odd values Feast must round-trip too: NaN, infinities, negative zero, big and tiny numbers
    rfm = frames["person_rfm"]
    rfm.loc[0, "monetary_30d"] = np.nan
    rfm.loc[len(rfm) - 1, "avg_order_value"] = -0.0
    rfm.loc[len(rfm) - 2, "tenure_days"] = 1e-300
    frames["person_behaviour"].loc[len(rfm) - 1, "price_index"] = np.inf
    write_feature_tables(frames, settings.features_dir)
    apply(settings)
    yield settings
    mp.undo()


def test_fast_path_writes_feasts_rows_and_reads(home):
    people = ["PA", "PB", "nobody"]
    materialize(home, end=day(200))
    feast_rows = _rows(home)
    feast_reads = online_features(open_store(home), people, "decision_v1")
    _clear(home)
    assert all(not rows for rows in _rows(home).values())

    report = fast_materialize(home, end=day(200))
    assert report.rows == {view: 2 for view in VIEW_FEATURES}
    assert report.cells == 2 * sum(len(v) for v in VIEW_FEATURES.values())
    assert _rows(home) == feast_rows
    with sqlite3.connect(home.feast_dir / "online.db") as conn:  # the store had no rows: larger pages
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 32768
    fast_reads = online_features(open_store(home), people, "decision_v1")
    pd.testing.assert_frame_equal(pd.DataFrame(fast_reads), pd.DataFrame(feast_reads))
    assert fast_reads["lifecycle_stage"] == [4, 3, None]
    # the registry knows the views are materialized up to the end, as after Feast's path
    fv = open_store(home).get_feature_view("person_rfm")
    assert fv.materialization_intervals and fv.materialization_intervals[-1][1] >= day(200)


def _feast_then_fast(home, steps, people, monkeypatch) -> tuple:
    """Run ``steps`` (end, views) with Feast's materialize, then with the fast path, on a cleared store."""
    _clear(home)
    for end, views in steps:
        start = (pd.Timestamp(end) - pd.Timedelta(days=400)).to_pydatetime()
        open_store(home).materialize(start_date=start, end_date=end.to_pydatetime(), feature_views=views)
    feast = _rows(home), online_features(open_store(home), people, "decision_v1")
    _clear(home)
    # a few entities per INSERT (the package's ``materialize`` name hides the module): chunks must not show
    monkeypatch.setattr(sys.modules["features.materialize"], "CHUNK_BYTES", 200)
    for end, views in steps:
        fast_materialize(home, end=end, views=views)
    return feast, (_rows(home), online_features(open_store(home), people, "decision_v1"))


def test_upserts_over_existing_rows_as_feast_does(home, monkeypatch):
    # the day-120 snapshot overwrites the day-160 rows of one view; the other views keep theirs
    people = ["PA", "PB", "nobody"]
    feast, ours = _feast_then_fast(home, [(day(200), None), (day(130), ["person_rfm"])], people, monkeypatch)
    assert ours[0] == feast[0]
    pd.testing.assert_frame_equal(pd.DataFrame(ours[1]), pd.DataFrame(feast[1]))
    assert ours[1]["recency_days"][0] == 80.0 and ours[1]["lifecycle_stage"][0] == 2


def test_window_and_arguments(home):
    fast_materialize(home, end=day(130))  # the day-120 snapshot overwrites the day-160 rows
    reads = online_features(open_store(home), ["PA"], "decision_v1")
    assert reads["recency_days"] == [80.0] and reads["lifecycle_stage"] == [2]
    frame = pd.DataFrame({"person_id": ["A", "A", "B", "A"], "x": [1, 2, 3, 4],
                          "event_timestamp": [day(1), day(3), day(9), day(3)]})
    got = latest_rows(frame, "person_id", "event_timestamp", day(0), day(5))
    assert got["x"].tolist() == [4]  # the latest row, and of rows with the same time the later one
    with pytest.raises(ValueError, match="start must not be after end"):
        fast_materialize(home, end=day(1), start=day(2))
    with pytest.raises(ValueError, match="views must name"):
        fast_materialize(home, end=day(200), views=["no_such_view"])


@pytest.mark.parametrize(("rows", "journal", "expected"), [(0, "delete", 32768), (1, "delete", 4096),
                                                           (0, "wal", 4096)])
def test_only_a_store_without_rows_gets_larger_pages(tmp_path, rows, journal, expected):
    prefer_larger_pages = sys.modules["features.materialize"]._prefer_larger_pages
    with sqlite3.connect(tmp_path / "online.db") as conn:
        conn.execute(f"PRAGMA journal_mode = {journal}")
        conn.execute("CREATE TABLE t (entity_key BLOB, feature_name TEXT, PRIMARY KEY (entity_key, "
                     "feature_name))")
        conn.execute("CREATE INDEX t_ek ON t (entity_key)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(b"k", "f")] * rows)
    with sqlite3.connect(tmp_path / "online.db") as conn:
        prefer_larger_pages(conn)
        assert conn.execute("PRAGMA page_size").fetchone()[0] == expected
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == rows
        assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 't_ek'").fetchone()[0] == (
            "CREATE INDEX t_ek ON t (entity_key)")


def test_varied_tables_match_feast(tmp_path, monkeypatch):
    """Many distinct values, negative ints (10-byte varints), NaN here and there, 1..17 digit doubles."""
    monkeypatch.setenv("NBA_HOME", str(tmp_path))
    settings = load_settings("embedded")
    rng = np.random.default_rng(7)
    persons = np.array([f"P{i:05d}" for i in range(150)], dtype=object)
    frames = {}
    for view, kinds in VIEW_FEATURES.items():
        parts = []
        for days in (150, 190):
            data = {"person_id": persons, "event_timestamp": pd.Series([day(days)] * len(persons))}
            for name, kind in kinds.items():
                if kind == "int":
                    data[name] = rng.integers(-3, 300, len(persons))
                else:
                    values = np.round(rng.gamma(1.5, 20.0, len(persons)) * 10.0 ** rng.integers(-3, 9),
                                      int(rng.integers(0, 17)))
                    values[rng.random(len(persons)) < 0.05] = np.nan
                    data[name] = values
            parts.append(pd.DataFrame(data))
        frames[view] = pd.concat(parts, ignore_index=True)
    write_feature_tables(frames, settings.features_dir)
    apply(settings)
    people = list(persons[:20]) + ["nobody"]
    materialize(settings, end=day(200))
    feast = _rows(settings), online_features(open_store(settings), people, "decision_v1")
    _clear(settings)
    fast_materialize(settings, end=day(200))
    assert _rows(settings) == feast[0]
    pd.testing.assert_frame_equal(pd.DataFrame(online_features(open_store(settings), people, "decision_v1")),
                                  pd.DataFrame(feast[1]))
