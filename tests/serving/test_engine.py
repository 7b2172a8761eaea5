"""The whole engine on small real models and in-memory persons: consent, caps, holdout, arms, explain."""

from collections import Counter
from datetime import timedelta

import numpy as np
import pytest

from features.schema import CONSENT_CHANNELS
from serving.contact_history import InMemoryContactHistory
from serving.contracts import DecideRequest
from serving.experiments import ExperimentConfig, assign_arm
from tests.serving.engine_fixtures import NOW, People, make_engine, model_set, random_features

CHANNEL_CHOICES = [None, "sms", "email", "app", "web", "guide", "wechat_oa", "paid_ads", "pos"]


def _request(person: int, channel=None, id_type="member_id", limit=3, **kwargs):
    prefix = {"member_id": "M", "wechat_openid": "W", "cookie_id": "C"}[id_type]
    return DecideRequest(customer={"id_type": id_type, "id": f"{prefix}{person}"}, channel=channel, limit=limit,
                         **kwargs)


def test_no_contact_without_consent_over_100k_random_decisions():
    rng = np.random.default_rng(7)
    people = People(random_features(rng, 20_000, consent_rate=0.3))
    engine = make_engine(people, policies={"caps": []},
                         experiments=ExperimentConfig(holdout=0.05))
    requests = []
    for _ in range(100_000):
        person = int(rng.integers(0, 22_000))          # ~10% unknown persons (cold start)
        channel = CHANNEL_CHOICES[int(rng.integers(0, len(CHANNEL_CHOICES)))]
        requests.append(_request(person, channel, limit=int(rng.integers(1, 6))))
    results = engine.decide_batch(requests, now=NOW)
    assert len(results) == 100_000
    outbound, violations = 0, []
    for request, (decision, _) in zip(requests, results, strict=True):
        features = people.read(decision.person_id) if decision.person_id else None
        for a in decision.actions:
            if a.channel in CONSENT_CHANNELS:
                outbound += 1
                if features is None or features.get(f"consent_{a.channel}") != 1:
                    violations.append((decision.person_id, a.action_id, a.channel))
            if request.channel is not None:
                assert a.channel == request.channel
    assert violations == []
    assert outbound > 10_000, "the check is not vacuous: many outbound contacts were made"


def test_no_person_over_a_channel_cap_across_identifiers_and_channels():
    rng = np.random.default_rng(1)
    features = random_features(rng, 50, consent_rate=1.0)
    people = People(features)
    history = InMemoryContactHistory()
    engine = make_engine(people, contact_history=history)   # caps: sms 2 / 7 days, all outbound 4 / 7 days
    id_types = ["member_id", "wechat_openid", "cookie_id"]
    for call in range(60):
        for person in range(50):
            channel = CHANNEL_CHOICES[(call + person) % len(CHANNEL_CHOICES)]
            engine.decide(_request(person, channel, id_type=id_types[call % 3], limit=3),
                          now=NOW + timedelta(hours=call))
    for person in range(50):
        contacts = history.contacts(f"P{person}", NOW - timedelta(days=30))
        per_channel = Counter(c.channel for c in contacts)
        assert per_channel["sms"] <= 2
        assert len(contacts) <= 4
    assert history.total_contacts() >= 50 * 3, "persons did get contacted up to their caps"


def test_caps_hold_within_one_answer():
    people = People(random_features(np.random.default_rng(2), 5, consent_rate=1.0))
    engine = make_engine(people, policies={"caps": [{"channel": "all", "max": 1, "days": 7}]})
    decision, candidates = engine.decide(_request(0, None, limit=5), now=NOW)
    assert sum(a.channel in CONSENT_CHANNELS for a in decision.actions) == 1
    assert any((c.removed_by or "").startswith("cap: at most 1 contacts on all") for c in candidates)


def test_holdout_group_is_never_contacted():
    rng = np.random.default_rng(3)
    people = People(random_features(rng, 3_000, consent_rate=1.0))
    config = ExperimentConfig(holdout=0.2, salt="holdout-test")
    engine = make_engine(people, experiments=config, policies={"caps": []})
    requests = [_request(i % 3_000, CHANNEL_CHOICES[i % len(CHANNEL_CHOICES)]) for i in range(9_000)]
    held = 0
    for request, (decision, _) in zip(requests, engine.decide_batch(requests, now=NOW), strict=True):
        assert decision.experiment_arm == assign_arm(decision.person_id, config)
        if decision.experiment_arm == "holdout":
            held += 1
            assert all(a.channel not in CONSENT_CHANNELS for a in decision.actions)
        elif request.channel in ("sms", "email"):
            assert decision.actions, "consenting non-holdout persons do get outbound actions"
    assert 0.15 < held / 9_000 < 0.25


def test_arms_are_sticky_across_identifiers_channels_calls_and_engines():
    people = People(random_features(np.random.default_rng(4), 400, consent_rate=1.0))
    config = ExperimentConfig(holdout=0.1, challenger=0.3, salt="sticky")
    challenger = model_set(1, version="2")
    engines = [make_engine(people, experiments=config, challenger=challenger) for _ in range(2)]
    arms = Counter()
    for person in range(200):
        seen = {
            engine.decide(_request(person, channel, id_type=id_type), now=NOW)[0].experiment_arm
            for engine in engines for id_type in ("member_id", "wechat_openid", "cookie_id")
            for channel in (None, "web", "sms")
        }
        assert len(seen) == 1
        arms[seen.pop()] += 1
    assert set(arms) == {"champion", "challenger", "holdout"}
    assert 0.18 < arms["challenger"] / 200 < 0.42


def test_challenger_serves_its_arm_and_shadows_the_champion():
    people = People(random_features(np.random.default_rng(5), 300, consent_rate=1.0))
    config = ExperimentConfig(holdout=0.1, challenger=0.3, shadow=True, salt="shadow")
    engine = make_engine(people, experiments=config, challenger=model_set(1, version="2"))
    seen = set()
    for person in range(300):
        decision, _ = engine.decide(_request(person, None), now=NOW)
        seen.add(decision.experiment_arm)
        if decision.experiment_arm == "challenger":
            assert set(decision.model_versions.values()) == {"2"} and decision.shadow is None
        elif decision.experiment_arm == "champion":
            assert set(decision.model_versions.values()) == {"1"}
            assert decision.shadow is not None and set(decision.shadow.model_versions.values()) == {"2"}
            assert decision.shadow.actions and "shadow" not in decision.model_dump()  # logged, not served
        else:
            assert decision.shadow is None
    assert seen == {"champion", "challenger", "holdout"}


def test_without_a_challenger_its_share_goes_to_the_champion():
    people = People(random_features(np.random.default_rng(6), 200))
    engine = make_engine(people, experiments=ExperimentConfig(challenger=0.5))
    arms = {engine.decide(_request(p), now=NOW)[0].experiment_arm for p in range(200)}
    assert arms == {"champion"}


def test_explain_shows_every_candidate_and_changes_nothing():
    features = random_features(np.random.default_rng(8), 3, consent_rate=0.0)
    features.loc[0, ["consent_email", "recency_days"]] = [1, 90]
    people = People(features)
    history = InMemoryContactHistory()
    engine = make_engine(people, contact_history=history)
    request = _request(0, None, limit=2)
    first = engine.explain(request, now=NOW)
    again = engine.explain(request, now=NOW)
    assert first.model_dump() == again.model_dump(), "explain is deterministic"
    assert history.total_contacts() == 0 and engine.volume.used()["channels"] == {}
    by_key = {(c.action_id, c.channel): c for c in first.candidates}
    assert len(by_key) == sum(len(a.channels) for a in engine.catalog)
    assert by_key[("coupon", "sms")].removed_by == "no consent for sms (marketing)"
    assert by_key[("coupon", "sms")].stage == "suitability"
    assert by_key[("coupon", "sms")].factors["propensity"] > 0, "removed candidates still show their factors"
    assert [c.chosen for c in first.candidates].count(True) == len(first.chosen) == 2
    for c in first.candidates:
        assert c.chosen == (c.removed_by is None)
        assert set(c.factors) >= {"propensity", "context_weight", "value", "lever", "priority", "maturity"}
    assert "churn_score" in first.scores and first.timezone == "Asia/Shanghai"
    decision, _ = engine.decide(request, now=NOW)
    assert history.total_contacts() == sum(a.channel in CONSENT_CHANNELS for a in decision.actions)


def test_suppression_and_quiet_hours_in_the_engine():
    features = random_features(np.random.default_rng(9), 1, consent_rate=1.0)
    people = People(features)
    history = InMemoryContactHistory()
    engine = make_engine(people, contact_history=history)
    history.reject("P0", "coupon", NOW - timedelta(days=1))
    history.reject("P0", "coupon", NOW - timedelta(days=2))
    _, candidates = engine.decide(_request(0, "email", limit=5), now=NOW)
    coupon = next(c for c in candidates if c.action.id == "coupon")
    assert coupon.removed_by == "suppressed: 2 rejections of coupon in 30 days"
    night = NOW.replace(hour=15)   # 23:00 in Shanghai
    decision, candidates = engine.decide(_request(0, "sms", limit=5), now=night)
    assert all(a.payload.get("send_after") == "2026-06-16T00:00:00+00:00" for a in decision.actions)
    _, candidates = engine.decide(_request(0, "guide"), now=night)
    assert all(c.removed_by and c.removed_by.startswith(("quiet hours", "not eligible")) for c in candidates)


def test_batch_honours_channel_volume_across_the_batch():
    people = People(random_features(np.random.default_rng(10), 500, consent_rate=1.0))
    engine = make_engine(people, policies={"volume": {"channel_daily": {"sms": 25}}, "caps": []})
    results = engine.decide_batch([_request(p, "sms", limit=2) for p in range(500)], now=NOW)
    sms = sum(len(d.actions) for d, _ in results)
    assert sms == 25
    blocked = [c for _, cands in results for c in cands if c.stage == "volume"]
    assert blocked and blocked[0].removed_by == "volume: channel sms daily limit 25 reached"


def test_decide_and_batch_agree_without_exploration():
    people = People(random_features(np.random.default_rng(11), 100, consent_rate=0.5))
    policies = {"exploration": {"enabled": False}, "caps": []}
    requests = [_request(p, CHANNEL_CHOICES[p % len(CHANNEL_CHOICES)]) for p in range(100)]
    one = [make_engine(people, policies=policies).decide(r, now=NOW)[0] for r in requests]
    many = [d for d, _ in make_engine(people, policies=policies).decide_batch(requests, now=NOW, chunk_size=7)]
    strip = lambda d: [(a.action_id, a.channel, a.propensity) for a in d.actions]  # noqa: E731
    assert [strip(d) for d in one] == [strip(d) for d in many]


def test_cold_start_visitor_gets_inbound_actions_only():
    people = People(random_features(np.random.default_rng(12), 10))
    engine = make_engine(people)
    decision, _ = engine.decide(_request(999, "web", id_type="cookie_id"), now=NOW)
    assert decision.cold_start and decision.person_id is None and decision.actions
    assert not engine.decide(_request(999, "sms", id_type="cookie_id"), now=NOW)[0].actions


@pytest.mark.parametrize("placement, expected", [("home_hero", {"coupon", "reco"}), ("cart", {"coupon"})])
def test_placement_applicability_in_the_engine(placement, expected):
    people = People(random_features(np.random.default_rng(13), 3))
    engine = make_engine(people)
    decision, _ = engine.decide(_request(0, "web", placement=placement, limit=5), now=NOW)
    assert {a.action_id for a in decision.actions} == expected


def test_caps_hold_for_a_person_repeated_within_one_batch_chunk():
    people = People(random_features(np.random.default_rng(3), 20, consent_rate=1.0))
    history = InMemoryContactHistory()
    engine = make_engine(people, contact_history=history)   # caps: sms 2 / 7 days, all outbound 4 / 7 days
    id_types = ["member_id", "wechat_openid", "cookie_id"]
    requests = [_request(p, None, id_type=id_types[k % 3], limit=3) for k in range(10) for p in range(20)]
    engine.decide_batch(requests, now=NOW)   # one chunk: every person ten times, under three identifiers
    for person in range(20):
        contacts = history.contacts(f"P{person}", NOW - timedelta(days=30))
        assert Counter(c.channel for c in contacts)["sms"] <= 2
        assert len(contacts) <= 4
    assert history.total_contacts() >= 20 * 3, "persons did get contacted up to their caps"


def test_caps_hold_against_the_decision_log_before_it_is_written(tmp_path):
    """The service's history reads the log, which is written after the funnel: later chunks of a batch
    and a second request for the same person must still see the contacts decided so far."""
    from serving.contact_history import SQLiteContactHistory
    from serving.decision_log import DecisionLog

    log = DecisionLog(tmp_path / "decisions.db")
    history = SQLiteContactHistory(tmp_path / "decisions.db", CONSENT_CHANNELS)
    people = People(random_features(np.random.default_rng(4), 10, consent_rate=1.0))
    engine = make_engine(people, contact_history=history)   # caps: sms 2 / 7 days, all outbound 4 / 7 days
    requests = [_request(p, None, limit=3) for _ in range(8) for p in range(10)]
    results = engine.decide_batch(requests, now=NOW, chunk_size=7)   # repeats fall in later chunks
    contacts = Counter((d.person_id, a.channel) for d, _ in results for a in d.actions if a.channel in CONSENT_CHANNELS)
    per_person = Counter()
    for (person, channel), n in contacts.items():
        assert channel != "sms" or n <= 2
        per_person[person] += n
    assert per_person and max(per_person.values()) <= 4
    # once the log holds them, each contact is counted once
    since = NOW - timedelta(days=7)
    before = {p: len(history.contacts(p, since)) for p in per_person}
    log.record_decisions((d, r.channel, c) for (d, c), r in zip(results, requests, strict=True))
    history.written(d for d, _ in results)
    assert {p: len(history.contacts(p, since)) for p in per_person} == before == dict(per_person)
    log.close()


def test_daily_volume_survives_a_restart_through_the_decision_log(tmp_path):
    """A restarted server (or a second campaign run) starts the day from the log, not from zero."""
    from datetime import UTC, datetime

    from serving.contact_history import SQLiteContactHistory
    from serving.decision_log import DecisionLog

    now = datetime.now(UTC)   # the log stamps contacts with the wall clock
    people = People(random_features(np.random.default_rng(12), 300, consent_rate=1.0))
    policies = {"volume": {"channel_daily": {"email": 20}}, "caps": []}
    log = DecisionLog(tmp_path / "decisions.db")
    requests = [_request(p, "email", limit=1) for p in range(300)]
    sent = []
    for _ in range(2):   # the same day, twice, each time a new process's engine
        engine = make_engine(people, policies=policies,
                             contact_history=SQLiteContactHistory(tmp_path / "decisions.db", CONSENT_CHANNELS))
        results = engine.decide_batch(requests, now=now)
        log.record_decisions((d, "email", c) for d, c in results)
        sent.append(sum(len(d.actions) for d, _ in results))
    assert sent == [20, 0]
    log.close()
