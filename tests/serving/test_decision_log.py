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
