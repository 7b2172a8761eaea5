import pytest

from serving.contracts import ActionDecision, Decision
from serving.decision_log import DecisionLog, UnknownDecision


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
    rows = json.loads(candidates)
    assert [r["action_id"] for r in rows] == ["a", "b"]
    assert rows[1] == {"action_id": "b", "channel": "sms", "propensity": 0.5, "priority": 1.0,
                       "removed_by": "no consent for sms"}
    assert reason == "online store unavailable"


def test_old_log_files_are_migrated(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "d.db") as db:
        db.execute("CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, ts TEXT NOT NULL, person_id TEXT, "
                   "channel TEXT, actions TEXT NOT NULL, model_versions TEXT NOT NULL, experiment_arm TEXT NOT NULL, "
                   "degraded INTEGER NOT NULL, cold_start INTEGER NOT NULL)")
    log = DecisionLog(tmp_path / "d.db")
    log.record_decision(_decision(), "email", [])
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
