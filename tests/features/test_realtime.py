"""Real-time freshness: a pushed purchase reaches the lake and the person's online features within 1 s."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from feature_rows import raw_event, raw_frame

from config import load_settings
from features.ingest import ingest
from features.materialize import fast_materialize
from features.realtime import RealtimeUpdater, push_events
from features.store import apply, online_features, open_store
from pipelines import stages

pytestmark = pytest.mark.integration
START = pd.Timestamp("2026-01-01")


def day(n: float) -> pd.Timestamp:
    """Naive UTC (raw_event localises it)."""
    return START + pd.Timedelta(days=n)


def utc(n: float) -> pd.Timestamp:
    return day(n).tz_localize("UTC")


def _order(event_id, d, member, amount, category="shoes"):
    return raw_event(event_id, day(d), "app", "order", {"member_id": member},
                     {"order_id": f"o-{event_id}", "item_id": "i1", "category": category, "amount": amount})


RAW = [
    raw_event("e1", day(0), "app", "login", {"member_id": "M1", "device_id": "d-1"}),
    _order("e2", 5, "M1", 80.0),
    raw_event("e3", day(2), "app", "login", {"member_id": "M2", "device_id": "d-2"}),
    _order("e4", 100, "M2", 40.0, "books"),
    raw_event("e5", day(120), "app", "page_view", {"device_id": "d-2"}),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("NBA_HOME", str(tmp_path_factory.mktemp("nba-home")))
    settings = load_settings("embedded")
    raw_file = settings.home / "seed.parquet"
    raw_frame(RAW).to_parquet(raw_file, index=False)
    ingest([raw_file], settings.lake_dir, settings.quarantine_dir, settings.id_salt())
    quiet = lambda *_: None  # noqa: E731
    stages.resolve_identities(settings, quiet)
    stages.build_features(settings, quiet)
    apply(settings)
    fast_materialize(settings, end=utc(121))
    yield settings
    mp.undo()


def _person(settings, member: str) -> str:
    from features.identity import IdentityIndex, read_identity_map

    person = IdentityIndex(read_identity_map(settings.identity_dir)).lookup("member_id", member)
    assert person is not None
    return person


def test_a_pushed_purchase_changes_recency_and_stage_within_a_second(home):
    person = _person(home, "M1")
    store = open_store(home)
    before = online_features(store, [person], "decision_v1")
    assert before["recency_days"] == [115.0] and before["lifecycle_stage"] == [3]  # lapsed

    purchase = raw_frame([_order("push-1", 121, "M1", 60.0, "books")])
    updater = RealtimeUpdater(home)  # what a long-lived service holds
    started = time.perf_counter()
    report = updater.push_events(purchase)
    after = online_features(store, [person], "decision_v1")
    elapsed = time.perf_counter() - started
    print(f"push to online read: {elapsed:.3f} s")
    assert report.rows_kept == 1 and report.persons == [person] and report.unresolved_events == 0
    assert after["recency_days"] == [0.0] and after["lifecycle_stage"] == [4]  # reactivated after 116 days
    assert after["orders_total"] == [2] and after["affinity_books"][0] > 0
    assert elapsed < 1.0, f"push to online read took {elapsed:.3f} s"
    # the event is in the lake, once: pushing it again changes nothing
    from features.identity import read_lake_events

    assert (read_lake_events(home.lake_dir)["event_id"] == "push-1").sum() == 1
    again = push_events(home, purchase)
    assert again.rows_kept == 0 and again.duplicates == 1


def test_other_persons_keep_their_rows_and_bad_rows_are_quarantined(home):
    other = _person(home, "M2")
    store = open_store(home)
    before = online_features(store, [other], "decision_v1")
    bad = raw_frame([raw_event("push-bad", day(122), "fax", "order", {"member_id": "M1"}),
                     raw_event("push-new", day(122), "web", "page_view", {"cookie_id": "never-seen"})])
    report = push_events(home, bad)
    assert sum(report.quarantined.values()) == 1 and report.rows_kept == 1
    assert report.persons == [] and report.unresolved_events == 1
    assert online_features(store, [other], "decision_v1") == before
    with pytest.raises(ValueError, match="missing"):
        push_events(home, pd.DataFrame({"event_id": ["x"]}))
