"""Experiment assignment, segments, the SQLite contact history and segment batches."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from config.settings import CONFIG_DIR
from serving.batch import latest_offline_features, run_segment_batch, write_batch
from serving.contact_history import SQLiteContactHistory
from serving.contracts import ActionDecision, DecideRequest, Decision
from serving.decision_log import DecisionLog
from serving.experiments import (
    ExperimentConfig,
    ExperimentError,
    assign_arm,
    load_experiments,
    parse_experiments,
)
from serving.segments import SegmentError, load_segments, parse_segments, segment_mask
from tests.serving.engine_fixtures import NOW, People, make_engine, random_features


def test_arm_shares_follow_the_config_and_salt_reshuffles():
    config = ExperimentConfig(holdout=0.05, challenger=0.10, salt="s1")
    arms = pd.Series([assign_arm(f"P{i}", config) for i in range(20_000)]).value_counts(normalize=True)
    assert arms["holdout"] == pytest.approx(0.05, abs=0.01)
    assert arms["challenger"] == pytest.approx(0.10, abs=0.01)
    other = ExperimentConfig(holdout=0.05, challenger=0.10, salt="s2")
    moved = sum(assign_arm(f"P{i}", config) != assign_arm(f"P{i}", other) for i in range(2_000))
    assert moved > 100


@pytest.mark.parametrize("raw, message", [
    ({"holdout": 1.2}, r"experiments.holdout must be a share in \[0, 1\)"),
    ({"holdout": 0.6, "challenger": 0.5}, "holdout \\+ challenger must be < 1"),
    ({"salt": ""}, "salt must be a non-empty string"),
    ({"arms": 3}, r"unknown keys \['arms'\]"),
])
def test_invalid_experiments(raw, message):
    with pytest.raises(ExperimentError, match=message):
        parse_experiments(raw)


def test_shipped_experiments_and_segments_are_valid():
    config = load_experiments(CONFIG_DIR / "experiments.yaml")
    assert config.holdout > 0 and config.shadow
    segments = load_segments(CONFIG_DIR / "segments.yaml")
    assert {"at-risk-high-value", "new-in-30-days"} <= set(segments)


def test_segment_masks():
    segments = parse_segments({"segments": {
        "at-risk": {"rule": "churn_score > 0.5 and monetary_90d >= 200"},
        "new": {"rule": "tenure_days <= 30"},
    }})
    frame = pd.DataFrame({"monetary_90d": [300, 300, 100, np.nan], "tenure_days": [10, 40, 5, 31]})
    churn = np.array([0.9, 0.2, 0.9, 0.9])
    assert segment_mask(segments["at-risk"], frame, {"churn_score": churn}).tolist() == [True, False, False, False]
    assert segment_mask(segments["new"], frame).tolist() == [True, False, True, False]


@pytest.mark.parametrize("raw, message", [
    ({"segments": {"x": {"rule": "open('f')"}}}, "segment 'x': field 'rule' Call is not allowed"),
    ({"segments": {"x": {"rule": "bogus > 1"}}}, r"segment 'x': field 'rule' unknown names \['bogus'\]"),
    ({"segments": {"x": {}}}, "segment 'x': field 'rule' is required"),
    ({}, "non-empty mapping under 'segments'"),
])
def test_invalid_segments(raw, message):
    with pytest.raises(SegmentError, match=message):
        parse_segments(raw)


def _decision(decision_id, person, channel, action="coupon"):
    act = ActionDecision(action_id=action, channel=channel, score=1.0, propensity=0.1, value=1.0,
                         reasons=[], payload={})
    return Decision(decision_id=decision_id, person_id=person, actions=[act], model_versions={},
                    experiment_arm="champion", degraded=False, cold_start=False)


def test_sqlite_history_reads_the_decision_log_and_caps_apply(tmp_path):
    path = tmp_path / "decisions.db"
    log = DecisionLog(path)
    log.record_decision(_decision("d1", "P0", "sms"), "sms")
    log.record_decision(_decision("d2", "P0", "sms"), "sms")
    log.record_decision(_decision("d3", "P0", "web", "reco"), "web")      # inbound: not a contact
    log.record_decision(_decision("d4", "P1", "email"), "email")
    log.record_feedback("d1", "coupon", "dismiss", None, None)
    log.record_feedback("d2", "coupon", "dismiss", None, None)
    log.record_feedback("d4", "coupon", "click", None, None)
    history = SQLiteContactHistory(path, outbound=("sms", "email"))
    since = NOW.replace(year=2020)
    assert [(c.action_id, c.channel) for c in history.contacts("P0", since)] == [("coupon", "sms")] * 2
    assert history.rejections("P0", since) == {"coupon": 2} and history.rejections("P1", since) == {}
    # the engine now refuses sms (cap 2 per 7 days) and coupon (2 rejections) for P0 across identifiers
    people = People(random_features(np.random.default_rng(0), 2, consent_rate=1.0))
    engine = make_engine(people, contact_history=history)
    now = datetime.now(UTC) + timedelta(minutes=1)
    decision, candidates = engine.decide(DecideRequest(customer={"id_type": "wechat_openid", "id": "W0"},
                                                       channel="sms", limit=3), now=now)
    assert decision.actions == []
    rules = {c.removed_by for c in candidates}
    assert "suppressed: 2 rejections of coupon in 30 days" in rules
    assert any(r and r.startswith("cap: at most 2 contacts on sms") for r in rules)
    log.close()
    history.close()
    assert SQLiteContactHistory(tmp_path / "missing.db", ("sms",)).contacts("P0", since) == []


def test_segment_batch_writes_parquet_and_honours_volume(tmp_path):
    rng = np.random.default_rng(5)
    features = random_features(rng, 2_000, consent_rate=1.0)
    features.index = [f"P{i}" for i in range(len(features))]
    for i, view in enumerate(["a", "b"]):      # latest snapshot per person across two view files
        cols = list(features.columns)[i::2]
        frame = features[cols].reset_index(names="person_id")
        old = frame.assign(event_timestamp=pd.Timestamp("2026-01-01", tz="UTC"))
        new = frame.assign(event_timestamp=pd.Timestamp("2026-02-01", tz="UTC"))
        old[cols] = -1
        pd.concat([new, old]).to_parquet(tmp_path / f"{view}.parquet")
    latest = latest_offline_features(tmp_path)
    pd.testing.assert_frame_equal(latest.sort_index()[features.columns], features.sort_index(), check_dtype=False,
                                  check_names=False)
    segment = parse_segments({"segments": {"lapsing": {"rule": "recency_days > 20"}}})["lapsing"]
    engine = make_engine(People(random_features(rng, 1)), policies={"volume": {"channel_daily": {"sms": 300}}},
                         experiments=ExperimentConfig(holdout=0.1))
    seen = []
    out, members = run_segment_batch(engine, latest, segment, "sms", limit=2, now=NOW, chunk_size=500,
                                     progress=seen.append)
    assert members == int((features["recency_days"] > 20).sum()) and sum(seen) == members
    assert out["person_id"].nunique() == members                 # every member is on record, with its arm
    contacts = out.dropna(subset=["action_id"])
    assert len(contacts) == 300 and set(contacts["channel"]) == {"sms"}
    assert not set(out.loc[out.experiment_arm == "holdout", "action_id"].dropna())
    path = write_batch(out, tmp_path / "batches", "lapsing", "sms", NOW)
    assert pd.read_parquet(path).shape == out.shape


def test_segment_batch_decisions_are_logged_for_feedback_and_caps(tmp_path):
    rng = np.random.default_rng(7)
    features = random_features(rng, 300, consent_rate=1.0)
    features.index = [f"P{i}" for i in range(len(features))]
    segment = parse_segments({"segments": {"all": {"rule": "tenure_days >= 0"}}})["all"]
    log = DecisionLog(tmp_path / "decisions.db")
    history = SQLiteContactHistory(tmp_path / "decisions.db", ("sms",))
    engine = make_engine(People(random_features(rng, 1)), contact_history=history, policies={"caps": []})
    out, _ = run_segment_batch(engine, features, segment, "sms", limit=1, now=NOW, chunk_size=70,
                               record=log.record_decisions)
    sent = out.dropna(subset=["action_id"])
    assert len(sent) > 50
    first = sent.iloc[0]
    assert log.record_feedback(first.decision_id, first.action_id, "click", None, None) is True
    since = NOW - timedelta(days=1)
    assert sum(len(history.contacts(p, since)) for p in sent.person_id.unique()) >= len(sent)
    log.close()
    history.close()


def test_batch_prefilter_gives_the_same_decisions_as_the_full_funnel():
    rng = np.random.default_rng(6)
    features = random_features(rng, 1_500, consent_rate=0.3)
    features.index = [f"P{i}" for i in range(len(features))]
    segment = parse_segments({"segments": {"all": {"rule": "tenure_days >= 0"}}})["all"]
    outputs = []
    for prefilter in (True, False):
        engine = make_engine(People(random_features(rng, 1)), policies={"volume": {"channel_daily": {"sms": 200}}},
                             experiments=ExperimentConfig(holdout=0.1))
        out, _ = run_segment_batch(engine, features, segment, "sms", limit=2, now=NOW, chunk_size=300,
                                   prefilter=prefilter)
        keys = out.drop(columns=["decision_id", "score", "propensity"]).astype(str)
        outputs.append(sorted(map(tuple, keys.to_numpy().tolist())))
    assert outputs[0] == outputs[1]


def test_consent_mask_matches_has_consent():
    from serving.contact_policy import consent_mask, has_consent

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "consent_sms": rng.choice([0, 1, np.nan], 300),
        "consent_sms_service": rng.choice([0, 1, np.nan], 300),
    })
    records = frame.to_dict("records")
    for channel in ("sms", "email", "web"):
        for purpose in ("marketing", "service"):
            expected = [has_consent(r, channel, purpose) for r in records]
            assert consent_mask(frame, channel, purpose).tolist() == expected
