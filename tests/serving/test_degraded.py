import logging
from dataclasses import dataclass

import pytest

from features.schema import CONSENT_CHANNELS
from serving.degraded import FailureNote, GuardedReader, safe_default
from serving.http_guard import MaskingFilter, error_message
from serving.online import LazyReader, OnlineStoreUnavailable, SqliteOnlineReader


@dataclass(frozen=True)
class _Action:
    id: str
    channels: tuple[str, ...]
    value: float
    lever: float = 1.0
    description: str = ""


CATALOG = (
    _Action("sms_coupon", ("sms", "email"), 50.0),
    _Action("web_banner", ("web", "app"), 10.0),
    _Action("store_offer", ("pos",), 30.0, lever=0.5),
)


def test_safe_default_never_contacts_outbound_and_ranks_inbound_by_value():
    decision = safe_default(CATALOG, None, 5, "online store unavailable")
    assert decision.degraded is True and decision.degraded_reason == "online store unavailable"
    assert [(a.action_id, a.channel) for a in decision.actions] == [("store_offer", "pos"), ("web_banner", "web")]
    assert not any(a.channel in CONSENT_CHANNELS for a in decision.actions)


@pytest.mark.parametrize("channel, expected", [("sms", []), ("web", ["web_banner"]), ("pos", ["store_offer"])])
def test_safe_default_respects_the_asking_channel(channel, expected):
    assert [a.action_id for a in safe_default(CATALOG, channel, 3, "x").actions] == expected


def test_guarded_reader_notes_the_failure_and_answers_no_features():
    note = FailureNote()

    def broken(person_id):
        raise OnlineStoreUnavailable("file missing")

    reader = GuardedReader(broken, note)
    note.clear()
    assert reader("P1") is None
    assert "file missing" in note.take()
    assert note.take() is None, "the note is per request: taken once"


def test_lazy_reader_retries_opening_after_a_pause():
    calls = []

    def opener():
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError("registry.db")
        return lambda person_id: {"x": 1.0}

    reader = LazyReader(opener, retry_s=0.0)
    with pytest.raises(OnlineStoreUnavailable, match="cannot open the online store"):
        reader("P1")
    assert reader("P1") == {"x": 1.0}


def test_sqlite_reader_missing_file_is_unavailable(tmp_path):
    reader = SqliteOnlineReader(tmp_path / "nope.db", [("nba_person_rfm", ("recency_days",))])
    with pytest.raises(OnlineStoreUnavailable, match="missing"):
        reader("P1")
    assert not (tmp_path / "nope.db").exists(), "a read must never create an empty store"


@pytest.mark.parametrize("views, expected", [
    # names unique across the views: a stored feature the service does not use ("z") is skipped
    ([("t1", ("x",)), ("t2", ("y",))], {"x": 1.0, "y": 3.0}),
    # the same name in two views: each view's own value, later views last
    ([("t1", ("x", "z")), ("t2", ("x",))], {"x": 2.0, "z": 5.0}),
])
def test_sqlite_reader_reads_only_the_service_features_of_each_view(tmp_path, views, expected):
    import sqlite3

    from feast.protos.feast.types.Value_pb2 import Value

    reader = SqliteOnlineReader(tmp_path / "online.db", views)
    key = reader._entity_key("P1")
    stored = {"t1": {"x": 1.0, "z": 5.0}, "t2": {"x": 2.0, "y": 3.0}}
    with sqlite3.connect(tmp_path / "online.db") as db:
        for table, features in stored.items():
            db.execute(f"CREATE TABLE {table} (entity_key BLOB, feature_name TEXT, value BLOB, "
                       "PRIMARY KEY (entity_key, feature_name))")
            db.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)",
                           [(key, n, Value(double_val=v).SerializeToString()) for n, v in features.items()])
    assert reader("P1") == expected
    assert reader("P2") is None


@pytest.mark.parametrize("body, needle", [
    ([{"error": "unknown decision_id 'x'"}], "unknown decision_id 'x'"),
    ({"error": "1 validation error for DecideRequest",
      "detail": [{"type": "int_parsing", "loc": ["limit"], "msg": "Input should be a valid integer"}]},
     "limit: Input should be a valid integer"),
    ("plain text", "plain text"),
])
def test_error_bodies_become_one_object_naming_the_field(body, needle):
    message = error_message(body)
    assert isinstance(message, dict) and needle in message["error"]


def test_masking_filter_hides_phones_and_emails_in_rejected_requests():
    from pydantic import BaseModel, ValidationError

    class _M(BaseModel):
        limit: int

    try:
        _M(limit="call +86 138 1234 5678 or jane.doe@example.com")
    except ValidationError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("bentoml", logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/decide", "POST"),
                               exc_info)
    assert MaskingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "jane.doe@example.com" not in text and "5678" not in text
    assert record.levelno == logging.WARNING and "limit" in text


def test_guarded_batch_read_degrades_the_whole_batch():
    note = FailureNote()

    class _Broken:
        def __call__(self, person_id):
            return {"x": 1.0}

        def read_many(self, person_ids):
            raise OnlineStoreUnavailable("locked")

    reader = GuardedReader(_Broken(), note)
    note.clear()
    assert reader.read_many(["P1", "P2"]) == [None, None]
    assert "locked" in note.take()
    assert GuardedReader(lambda p: {"x": 2.0}, note).read_many(["P1"]) == [{"x": 2.0}]
