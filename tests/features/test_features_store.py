"""A real Feast store in a tmp NBA_HOME: apply, materialize, online read = last snapshot, historical
retrieval is point in time: events planted after a label timestamp are invisible to every feature."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_features_engineering import EVENTS, ROWS, day, ev
from test_features_engineering import frame as event_frame

from config import FEAST_REPO, load_settings
from features.engineering import VIEW_FEATURES, build_feature_snapshots, write_feature_tables
from features.store import (
    apply,
    feature_names,
    historical_features,
    materialize,
    online_features,
    open_store,
    repo_objects,
)

pytestmark = pytest.mark.integration
SNAPSHOTS = [day(60), day(120), day(160), day(190)]
# events after the day-160 label timestamps: a big order, a consent flip, a click, a new person
PLANTED = [
    ev("PA", 165, "pos", "order", order_id="o9", item_id="i9", category="books", amount=999.0),
    ev("PA", 170, "sms", "consent", consent_channel="sms", purpose="marketing", granted=True),
    ev("PB", 180, "app", "order", order_id="o10", item_id="i2", category="beauty", amount=10.0),
    ev("PA", 185, "email", "click", touch_id="t7", action_id="new_arrivals"),
    ev("PC", 170, "web", "page_view"),
]


@pytest.fixture(scope="module")
def feast_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("nba-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("NBA_HOME", str(home))
    settings = load_settings("embedded")
    frames = build_feature_snapshots(event_frame(ROWS + PLANTED), SNAPSHOTS)
    write_feature_tables(frames, settings.features_dir)
    apply(settings)
    materialize(settings, end=day(170))  # online = the day-160 snapshot
    yield settings, frames
    mp.undo()


def test_store_lives_in_the_tmp_home(feast_home):
    settings, _ = feast_home
    assert (settings.feast_dir / "registry.db").exists() and (settings.feast_dir / "online.db").exists()
    store = open_store(settings)
    sources = {fv.name: fv.batch_source.path for fv in store.list_feature_views()}
    assert sources["person_rfm"] == str(settings.features_dir / "person_rfm.parquet")


def test_views_match_engineering_and_services_compose(feast_home):
    settings, _ = feast_home
    store = open_store(settings)
    for fv in store.list_feature_views():
        assert {f.name for f in fv.features} == set(VIEW_FEATURES[fv.name])
        for field in fv.features:
            kind = VIEW_FEATURES[fv.name][field.name]
            assert str(field.dtype) == ("Int64" if kind == "int" else "Float64"), field.name
        assert fv.ttl.days == 400 and fv.tags.get("owner")
    base = [*VIEW_FEATURES["person_rfm"], *VIEW_FEATURES["person_channel_engagement"],
            *VIEW_FEATURES["person_category_affinity"]]
    extra = [*VIEW_FEATURES["person_behaviour"], *VIEW_FEATURES["person_value"]]
    assert feature_names(store, "churn_v1") == [*base, *extra]
    assert feature_names(store, "propensity_v1") == [*base, *VIEW_FEATURES["person_consent"], *extra]
    assert len(feature_names(store, "decision_v1")) >= 60
    assert set(feature_names(store, "decision_v1")) == {n for v in VIEW_FEATURES.values() for n in v}


def test_online_read_equals_last_snapshot(feast_home):
    settings, frames = feast_home
    store = open_store(settings)
    online = online_features(store, ["PA", "PB", "nobody"], "decision_v1")
    assert online["person_id"] == ["PA", "PB", "nobody"]
    for view, frame in frames.items():
        last = frame[frame["event_timestamp"] == day(160)].set_index("person_id")
        for name in VIEW_FEATURES[view]:
            assert online[name][:2] == pytest.approx(last.loc[["PA", "PB"], name].tolist()), name
            assert online[name][2] is None
    assert online["lifecycle_stage"][:2] == [4, 3]


def test_historical_is_point_in_time(feast_home):
    settings, frames = feast_home
    labels = pd.DataFrame({
        "person_id": ["PA", "PA", "PA", "PB", "PA", "PB"],
        "event_timestamp": [day(60), day(119.9), day(59), day(130), day(161), day(100)],
        "label": [1, 2, 3, 4, 5, 6],
    })
    result = historical_features(settings, labels, "propensity_v1")
    assert result["label"].tolist() == [1, 2, 3, 4, 5, 6]
    rfm = frames["person_rfm"].set_index(["person_id", "event_timestamp"])
    # the snapshot at or before each label timestamp, never a later one
    expected_snapshot = [day(60), day(60), None, day(120), day(160), None]  # day 161 -> day-160 snapshot
    for i, snap in enumerate(expected_snapshot):
        row = result.iloc[i]
        if snap is None:
            assert pd.isna(row["recency_days"]) and pd.isna(row["consent_email"])
        else:
            want = rfm.loc[(row["person_id"], snap)]
            assert row["recency_days"] == want["recency_days"]
            assert row["lifecycle_stage"] == want["lifecycle_stage"]
    assert result.loc[1, "lifecycle_stage"] == 1 and result.loc[4, "lifecycle_stage"] == 4


def test_repo_objects_follow_nba_home(feast_home, tmp_path):
    settings, _ = feast_home
    other = load_settings("embedded").__class__(**{**settings.__dict__, "home": tmp_path})
    paths = {o.name: o.path for o in repo_objects(other) if hasattr(o, "path")}
    assert paths["person_consent_source"] == str(tmp_path / "features" / "person_consent.parquet")
    repo_objects(settings)  # leave the modules pointing at the fixture's home


def test_feast_cli_apply_on_the_repo(tmp_path):
    """`cd features/repo && NBA_HOME=... feast apply` works (on a copy, so ../../.nba lands in tmp)."""
    repo = tmp_path / "project" / "features" / "repo"
    shutil.copytree(FEAST_REPO, repo, ignore=shutil.ignore_patterns("__pycache__"))
    home = tmp_path / "project" / ".nba"
    home.mkdir()  # the state folder exists once any stage ran; feast creates only the last level
    env = {**os.environ, "NBA_HOME": str(home)}
    feast = Path(sys.executable).parent / "feast"
    done = subprocess.run([str(feast), "apply"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (home / "feast" / "registry.db").exists()
    listed = subprocess.run([str(feast), "feature-services", "list"], cwd=repo, env=env,
                            capture_output=True, text=True, timeout=240)
    assert {"churn_v1", "propensity_v1", "decision_v1"} <= set(listed.stdout.split())


def test_events_planted_after_the_label_time_are_invisible(feast_home):
    """Historical retrieval at label times <= day 175 equals features computed without the planted events."""
    settings, _ = feast_home
    labels = pd.DataFrame({"person_id": ["PA", "PB", "PA", "PB"],
                           "event_timestamp": [day(160), day(160), day(175), day(189.9)]})
    result = historical_features(settings, labels, "propensity_v1")
    clean = build_feature_snapshots(EVENTS, [day(160)])  # the world without the planted events
    names = [n for view in VIEW_FEATURES for n in VIEW_FEATURES[view] if n in result.columns]
    assert len(names) == len(feature_names(open_store(settings), "propensity_v1")) >= 60
    for i, row in result.iterrows():
        for view, view_frame in clean.items():
            want = view_frame.set_index("person_id").loc[row["person_id"]]
            for name in VIEW_FEATURES[view]:
                if name in result.columns:
                    assert row[name] == pytest.approx(want[name]), (i, name)
    # once the label time passes the planted events' snapshot, they are seen
    later = historical_features(settings, pd.DataFrame({"person_id": ["PA"], "event_timestamp": [day(195)]}),
                                "propensity_v1")
    assert later.loc[0, "orders_total"] == 4 and later.loc[0, "consent_sms"] == 1
    assert later.loc[0, "max_order_value"] == 999.0
