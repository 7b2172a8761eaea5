import pytest

from serving.contracts import ActionDecision, Decision
from serving.decision_log import DecisionLog, UnknownDecision, unpack_candidates


def _decision(decision_id="d1"):
    action = ActionDecision(action_id="a", channel="email", score=1.0, propensity=0.2, value=5.0,
                            reasons=[], payload={})
    return Decision(decision_id=decision_id, person_id="P1", actions=[action], model_versions={"churn": "1"},
                    experiment_arm="champion", degraded=False, cold_start=False)


def test_feedback_is_idempotent_and_survives_reopen(tmp_path):
    log = DecisionLog(tmp_path / "d.db")
    log.record_decision(_decision(), "email")
    assert log.record_feedback("d1", "a", "click", None, None) is True
    assert log.record_feedback("d1", "a", "click", None, None) is False
    assert log.record_feedback("d1", "a", "conversion", 20.0, None) is True
    log.close()
    reopened = DecisionLog(tmp_path / "d.db")
    assert reopened.counts() == {"decisions": 1, "feedback": 2}


@pytest.mark.parametrize("decision_id, action_id, message", [
    ("nope", "a", "unknown decision_id 'nope'"),
    ("d1", "other", "did not offer action 'other'"),
])
def test_feedback_for_unknown_decision_or_action(tmp_path, decision_id, action_id, message):
    log = DecisionLog(tmp_path / "d.db")
    log.record_decision(_decision(), "email")
    with pytest.raises(UnknownDecision, match=message):
        log.record_feedback(decision_id, action_id, "click", None, None)


def test_concurrent_writes_are_all_committed_in_groups(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    log = DecisionLog(tmp_path / "d.db", synchronous="NORMAL")
    ids = [f"d{i}" for i in range(200)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: log.record_decision(_decision(i), "email"), ids))
        acks = list(pool.map(lambda i: log.record_feedback(i, "a", "click", None, None), ids))
    assert all(acks)
    assert log.counts() == {"decisions": 200, "feedback": 200}
    log.close()


def test_candidates_and_degraded_reason_are_logged(tmp_path):
    import json
    import sqlite3
    from dataclasses import dataclass

    @dataclass
    class _Action:
        id: str

    @dataclass
    class _Candidate:
        action: _Action
        channel: str
        propensity: float
        removed_by: str | None
        sampled_propensity: float | None = None

        @property
        def priority(self) -> float:
            return self.propensity * 2

    log = DecisionLog(tmp_path / "d.db")
    decision = _decision().model_copy(update={"degraded": True, "degraded_reason": "online store unavailable"})
    log.record_decision(decision, "email", [_Candidate(_Action("a"), "email", 0.25, None),
                                            _Candidate(_Action("b"), "sms", 0.5, "no consent for sms")])
    log.close()
    with sqlite3.connect(tmp_path / "d.db") as db:
        candidates, reason = db.execute("SELECT candidates, degraded_reason FROM decisions").fetchone()
    assert json.loads(candidates)["rules"] == ["no consent for sms"]   # packed: each rule once
    rows = unpack_candidates(candidates)
    assert [r["action_id"] for r in rows] == ["a", "b"]
    assert rows[1] == {"action_id": "b", "channel": "sms", "propensity": 0.5, "priority": 1.0,
                       "removed_by": "no consent for sms"}
    assert rows[0]["removed_by"] is None
    assert reason == "online store unavailable"
    old_form = json.dumps(rows)  # logs of earlier releases stored the list itself
    assert unpack_candidates(old_form) == rows and unpack_candidates(None) == []


def _old_release_log(path):
    """A log as the first release wrote it: no candidates column, no contacts table, no feedback.person_id."""
    import json
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, ts TEXT NOT NULL, person_id TEXT, "
                   "channel TEXT, actions TEXT NOT NULL, model_versions TEXT NOT NULL, experiment_arm TEXT NOT NULL, "
                   "degraded INTEGER NOT NULL, cold_start INTEGER NOT NULL)")
        db.execute("CREATE TABLE feedback (decision_id TEXT NOT NULL REFERENCES decisions(decision_id), "
                   "action_id TEXT NOT NULL, outcome TEXT NOT NULL, value REAL, ts TEXT NOT NULL, "
                   "PRIMARY KEY (decision_id, action_id, outcome))")
        old = [{"action_id": "a", "channel": "sms"}, {"action_id": "b", "channel": "web"}]
        db.execute("INSERT INTO decisions VALUES ('d0', '2026-01-01T00:00:00+00:00', 'P0', NULL, ?, '{}', "
                   "'champion', 0, 0)", (json.dumps(old),))
        db.execute("INSERT INTO feedback VALUES ('d0', 'a', 'dismiss', NULL, '2026-01-02T00:00:00+00:00')")


def test_old_log_files_are_migrated(tmp_path):
    import sqlite3

    _old_release_log(tmp_path / "d.db")
    log = DecisionLog(tmp_path / "d.db")
    log.record_decision(_decision(), "email", [])
    assert log.counts() == {"decisions": 2, "feedback": 1}
    log.close()
    with sqlite3.connect(tmp_path / "d.db") as db:
        contacts = db.execute("SELECT person_id, action_id, channel, decision_id FROM contacts ORDER BY ts").fetchall()
        feedback = db.execute("SELECT decision_id, person_id FROM feedback").fetchall()
    # the old decision's outbound action is derived once; the inbound one is not a contact
    assert contacts == [("P0", "a", "sms", "d0"), ("P1", "a", "email", "d1")]
    assert feedback == [("d0", "P0")]


def test_history_reads_old_and_migrated_logs_alike(tmp_path):
    from datetime import datetime

    from serving.contact_history import SQLiteContactHistory

    since = datetime.fromisoformat("2025-12-01T00:00:00+00:00")
    _old_release_log(tmp_path / "old.db")
    _old_release_log(tmp_path / "new.db")
    DecisionLog(tmp_path / "new.db").close()
    answers = []
    for name in ("old.db", "new.db"):
        history = SQLiteContactHistory(tmp_path / name, outbound=("sms",))
        answers.append(([(c.action_id, c.channel) for c in history.contacts("P0", since)],
                        history.rejections("P0", since), history.contacts("P1", since)))
        history.close()
    assert answers[0] == answers[1] == ([("a", "sms")], {"a": 1}, [])


def test_only_outbound_actions_of_known_persons_are_contacts(tmp_path):
    import sqlite3

    log = DecisionLog(tmp_path / "d.db", contact_channels=("email",))
    anonymous = _decision("d2").model_copy(update={"person_id": None})
    web = _decision("d3")
    web.actions[0].channel = "web"
    log.record_decisions([(_decision("d1"), "email", []), (anonymous, "email", []), (web, "web", [])])
    log.close()
    with sqlite3.connect(tmp_path / "d.db") as db:
        assert db.execute("SELECT decision_id, channel FROM contacts").fetchall() == [("d1", "email")]


def test_a_record_that_cannot_be_encoded_fails_alone(tmp_path):
    class _Broken:
        @property
        def action(self):
            raise ValueError("broken candidate")

    log = DecisionLog(tmp_path / "d.db", synchronous="NORMAL")
    bad = log.submit_decisions([(_decision("bad"), "email", [_Broken()])])
    good = log.submit_decisions([(_decision("good"), "email", [])])
    with pytest.raises(ValueError, match="broken candidate"):
        bad.result(10)
    good.result(10)
    assert log.counts()["decisions"] == 1
    log.close()


def test_closed_log_refuses_writes(tmp_path):
    log = DecisionLog(tmp_path / "d.db")
    log.close()
    with pytest.raises(RuntimeError, match="closed"):
        log.record_decision(_decision(), "email")


def test_a_failing_write_does_not_fail_its_group(tmp_path):
    import sqlite3
    from concurrent.futures import ThreadPoolExecutor

    log = DecisionLog(tmp_path / "d.db", synchronous="NORMAL")
    log.record_decision(_decision("dup"), "email")

    def write(i):
        try:
            log.record_decision(_decision("dup" if i % 10 == 0 else f"d{i}"), "email")
            return "ok"
        except sqlite3.IntegrityError:
            return "dup"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(write, range(100)))
    assert outcomes.count("dup") == 10 and outcomes.count("ok") == 90
    assert log.counts()["decisions"] == 91
    log.close()


def test_decision_ids_are_time_ordered_uuid7():
    import time
    import uuid

    from serving.contracts import new_decision_id

    first = new_decision_id()
    time.sleep(0.002)
    ids = [new_decision_id() for _ in range(1000)]
    assert len(set(ids)) == 1000 and all(len(i) == 32 for i in ids)
    parsed = uuid.UUID(first)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert all(first < i for i in ids)  # later milliseconds sort later: the primary key grows at its end


def test_a_batch_larger_than_one_statement_is_stored_whole(tmp_path):
    from serving.decision_log import ROWS_PER_INSERT

    log = DecisionLog(tmp_path / "d.db", synchronous="NORMAL")
    n = 2 * ROWS_PER_INSERT + 7
    log.record_decisions((_decision(f"d{i}"), "email", []) for i in range(n))
    assert log.counts()["decisions"] == n
    with pytest.raises(Exception, match="UNIQUE"):  # one duplicate fails the whole batch call ...
        log.record_decisions([(_decision("new"), "email", []), (_decision("d0"), "email", [])])
    assert log.counts()["decisions"] == n  # ... and nothing of it is stored
    log.close()

