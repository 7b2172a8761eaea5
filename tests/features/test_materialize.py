"""The fast SQLite materialization writes what Feast's own materialize writes: same rows, same reads."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from test_features_engineering import EVENTS, day

from config import load_settings
from features.engineering import VIEW_FEATURES, build_feature_snapshots, write_feature_tables
from features.materialize import fast_materialize, latest_rows, struct_double
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
    fast_reads = online_features(open_store(home), people, "decision_v1")
    pd.testing.assert_frame_equal(pd.DataFrame(fast_reads), pd.DataFrame(feast_reads))
    assert fast_reads["lifecycle_stage"] == [4, 3, None]
    # the registry knows the views are materialized up to the end, as after Feast's path
    fv = open_store(home).get_feature_view("person_rfm")
    assert fv.materialization_intervals and fv.materialization_intervals[-1][1] >= day(200)


def test_window_and_upsert(home):
    fast_materialize(home, end=day(130))  # the day-120 snapshot overwrites the day-160 rows
    reads = online_features(open_store(home), ["PA"], "decision_v1")
    assert reads["recency_days"] == [80.0] and reads["lifecycle_stage"] == [2]
    frame = pd.DataFrame({"person_id": ["A", "A", "B"], "event_timestamp": [day(1), day(3), day(9)], "x": [1, 2, 3]})
    got = latest_rows(frame, "person_id", "event_timestamp", day(0), day(5))
    assert got["x"].tolist() == [2]
    with pytest.raises(ValueError, match="start must not be after end"):
        fast_materialize(home, end=day(1), start=day(2))
    with pytest.raises(ValueError, match="views must name"):
        fast_materialize(home, end=day(200), views=["no_such_view"])


@pytest.mark.parametrize("value", [0.0, -0.0, 1.5, -2.25, 1e-300, 1.7976931348623157e308, 123456.789])
def test_double_encoding_is_protobufs(value):
    from feast.protos.feast.types.Value_pb2 import Value

    assert struct_double(value) == Value(double_val=value).SerializeToString()
