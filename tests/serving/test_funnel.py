"""Unit tests of the pure funnel stages, one stage at a time."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config import ACTIONS_FILE
from serving.arbitration import arbitrate, explore, maturity, select_top_k
from serving.candidates import apply_applicability, expand
from serving.catalog import load_catalog, parse_catalog
from serving.contact_history import Contact
from serving.contact_policy import (
    CapCounter,
    apply_caps,
    apply_consent,
    apply_holdout,
    apply_quiet_hours,
    apply_suppression,
    has_consent,
    person_timezone,
)
from serving.eligibility import apply_eligibility
from serving.policies import Exploration, PolicyError, VolumeSettings, parse_policies
from serving.volume import VolumeLedger, plan_volume

NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _catalog(*entries):
    return parse_catalog({"actions": list(entries)})


# -- applicability ----------------------------------------------------------------------------------
def test_expand_restricts_to_requested_channel():
    catalog = load_catalog(ACTIONS_FILE)
    assert {c.channel for c in expand(catalog, "pos")} == {"pos"}
    assert expand(catalog, "pos")


def test_applicability_by_channel_and_placement():
    catalog = _catalog({"id": "banner", "channels": ["web", "app"], "value": 1,
                        "treatments": {"web": {"placements": ["home_hero"]}}},
                       {"id": "any", "channels": ["web"], "value": 1})
    candidates = expand(catalog)
    kept = apply_applicability(candidates, "web", "cart")
    assert [(c.action.id, c.channel) for c in kept] == [("any", "web")]
    rules = {(c.action.id, c.channel): (c.stage, c.removed_by) for c in candidates}
    assert rules[("banner", "web")] == ("applicability", "not applicable: no treatment for placement 'cart'")
    assert rules[("banner", "app")] == ("applicability", "not applicable: request is for channel web")
    assert len(apply_applicability(expand(catalog), "web", "home_hero")) == 2


# -- eligibility ------------------------------------------------------------------------------------
def test_eligibility_rule_and_validity_window():
    catalog = _catalog(
        {"id": "winback", "channels": ["sms", "email"], "value": 1,
         "eligibility": "churn_score > 0.5 and recency_days > 30"},
        {"id": "summer", "channels": ["email"], "value": 1, "valid_from": "2026-07-01"},
        {"id": "always", "channels": ["email"], "value": 1},
    )
    at_risk = {"churn_score": 0.7, "recency_days": 45}
    kept = apply_eligibility(expand(catalog), at_risk, NOW)
    assert sorted({c.action.id for c in kept}) == ["always", "winback"]
    candidates = expand(catalog)
    kept = apply_eligibility(candidates, {"churn_score": 0.7, "recency_days": 5}, NOW)
    assert [c.action.id for c in kept] == ["always"]
    removed = {c.action.id: c.removed_by for c in candidates if c.removed_by}
    assert removed["winback"] == "not eligible: rule 'churn_score > 0.5 and recency_days > 30' not satisfied"
    assert removed["summer"].startswith("not eligible: outside validity window (2026-07-01")
    assert [c.action.id for c in apply_eligibility(expand(catalog), None, NOW)] == ["always"]  # unknown person


# -- suitability ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "features, channel, purpose, expected",
    [
        (None, "sms", "marketing", False),            # unknown person has granted nothing
        (None, "web", "marketing", True),             # inbound placements need no marketing consent
        ({"consent_sms": 0}, "sms", "marketing", False),
        ({"consent_sms": 1}, "sms", "marketing", True),
        ({"consent_sms": None}, "sms", "marketing", False),
        ({"consent_sms": float("nan")}, "sms", "marketing", False),
        ({"consent_sms": "yes"}, "sms", "marketing", False),
        ({"consent_email": 1}, "sms", "marketing", False),
        ({"consent_sms": 1}, "sms", "service", True),                       # falls back to marketing consent
        ({"consent_sms": 1, "consent_sms_service": 0}, "sms", "service", False),  # explicit service refusal
        ({"consent_sms": 0, "consent_sms_service": 1}, "sms", "service", True),
        ({"consent_sms": 0, "consent_sms_service": 1}, "sms", "marketing", False),
    ],
)
def test_consent_per_channel_and_purpose(features, channel, purpose, expected):
    assert has_consent(features, channel, purpose) is expected


def test_consent_filter_marks_removed_candidates():
    catalog = load_catalog(ACTIONS_FILE)
    candidates = expand(catalog, None)
    kept = apply_consent(candidates, {"consent_email": 1})
    assert kept and all(c.channel not in {"sms", "wechat_oa", "app", "paid_ads", "guide"} for c in kept)
    removed = [c for c in candidates if c.removed_by]
    assert removed and all(c.removed_by.startswith("no consent") and c.stage == "suitability" for c in removed)


def test_holdout_removes_outbound_only():
    candidates = expand(load_catalog(ACTIONS_FILE))
    kept = apply_holdout(candidates, "holdout")
    assert kept and all(c.channel in {"web", "mini_program", "pos"} for c in kept)
    assert len(apply_holdout(expand(load_catalog(ACTIONS_FILE)), "champion")) == len(candidates)


def test_quiet_hours_in_the_persons_time_zone():
    policies = parse_policies({"quiet_hours": {"start": "21:00", "end": "08:00",
                                               "channels": {"guide": "suppress", "sms": "defer"}},
                               "default_timezone": "Asia/Shanghai"})
    catalog = _catalog({"id": "a", "channels": ["guide", "sms", "email"], "value": 1})
    night = datetime(2026, 6, 15, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai, 16:30 in London
    candidates = expand(catalog)
    kept = apply_quiet_hours(candidates, night, SHANGHAI, policies)
    assert [c.channel for c in kept] == ["sms", "email"]
    assert candidates[0].removed_by == "quiet hours 21:00-08:00 in Asia/Shanghai"
    assert kept[0].payload["send_after"] == "2026-06-16T00:00:00+00:00"  # 08:00 Shanghai next morning
    assert "send_after" not in kept[1].payload
    assert len(apply_quiet_hours(expand(catalog), night, ZoneInfo("Europe/London"), policies)) == 3
    assert len(apply_quiet_hours(expand(catalog), NOW, SHANGHAI, policies)) == 3  # noon in Shanghai


@pytest.mark.parametrize("features, context, expected", [
    (None, None, "Asia/Shanghai"),
    ({"timezone": "Europe/Paris"}, None, "Europe/Paris"),
    (None, {"timezone": "America/New_York"}, "America/New_York"),
    ({"timezone": "Mars/Olympus"}, None, "Asia/Shanghai"),   # unknown zone -> default
])
def test_person_timezone(features, context, expected):
    policies = parse_policies({"default_timezone": "Asia/Shanghai"})
    assert person_timezone(features, context, policies).key == expected


def test_caps_per_channel_period_and_all_channels():
    policies = parse_policies({"caps": [{"channel": "sms", "max": 2, "days": 7},
                                        {"channel": "all", "max": 3, "days": 7}]})
    catalog = _catalog({"id": "a", "channels": ["sms", "email", "web"], "value": 1})
    old = Contact(ts=NOW - timedelta(days=8), action_id="a", channel="sms")
    recent = [Contact(ts=NOW - timedelta(days=1), action_id="a", channel="sms")]
    counter = CapCounter([old, *recent], NOW, policies)
    assert len(apply_caps(expand(catalog), counter)) == 3      # the 8-day-old contact is outside the window
    counter.add(expand(catalog, "sms")[0])
    candidates = expand(catalog)
    kept = apply_caps(candidates, counter)
    assert [c.channel for c in kept] == ["email", "web"]
    assert candidates[0].removed_by == "cap: at most 2 contacts on sms per 7 days"
    counter.add(expand(catalog, "email")[0])
    assert [c.channel for c in apply_caps(expand(catalog), counter)] == ["web"]  # 'all' reached; web is inbound


def test_per_action_cap_counts_across_channels():
    catalog = _catalog({"id": "a", "channels": ["sms", "email"], "value": 1,
                        "caps": {"per_person": 1, "per_person_days": 30}},
                       {"id": "b", "channels": ["sms"], "value": 1})
    counter = CapCounter([Contact(ts=NOW - timedelta(days=20), action_id="a", channel="email")], NOW)
    candidates = expand(catalog)
    kept = apply_caps(candidates, counter)
    assert [c.action.id for c in kept] == ["b"]
    assert candidates[0].removed_by == "cap: action a at most 1 per person per 30 days"


def test_suppression_after_rejections():
    catalog = _catalog({"id": "a", "channels": ["sms"], "value": 1}, {"id": "b", "channels": ["sms"], "value": 1})
    candidates = expand(catalog)
    kept = apply_suppression(candidates, {"a": 2, "b": 1}, parse_policies({"suppression": {"rejections": 2}}))
    assert [c.action.id for c in kept] == ["b"]
    assert candidates[0].removed_by == "suppressed: 2 rejections of a in 30 days"


# -- arbitration ------------------------------------------------------------------------------------
def test_arbitration_ranks_by_p_c_v_l_one_channel_per_action():
    catalog = _catalog(
        {"id": "cheap", "channels": ["email", "sms"], "value": 10, "lever": 1.0},
        {"id": "rich", "channels": ["email"], "value": 50, "lever": 0.5},
        {"id": "boosted", "channels": ["email"], "value": 10, "lever": 3.0},
    )
    candidates = expand(catalog, None)
    for c, p in zip(candidates, [0.10, 0.30, 0.05, 0.10], strict=True):
        c.propensity = p
    top = arbitrate(candidates, limit=2)
    # priorities: cheap/email 1.0, cheap/sms 3.0, rich 1.25, boosted 3.0
    assert [(c.action.id, c.channel) for c in top] == [("boosted", "email"), ("cheap", "sms")]
    assert candidates[0].removed_by == "another channel ranked higher for this action"
    assert candidates[2].removed_by == "below the top-k cut"


def test_blocked_candidate_leaves_room_for_next_channel():
    catalog = _catalog({"id": "a", "channels": ["sms", "email"], "value": 10},
                       {"id": "b", "channels": ["web"], "value": 1})
    candidates = expand(catalog)
    for c, p in zip(candidates, [0.5, 0.2, 0.1], strict=True):
        c.propensity = p
    top = select_top_k(candidates, 2, constraint=lambda c: "volume: sms full" if c.channel == "sms" else None)
    assert [(c.action.id, c.channel) for c in top] == [("a", "email"), ("b", "web")]
    assert (candidates[0].stage, candidates[0].removed_by) == ("volume", "volume: sms full")


def test_thompson_exploration_is_seeded_and_centred_on_the_score():
    catalog = _catalog({"id": "a", "channels": ["email"], "value": 1})
    settings = Exploration(effective_sample_size=200, new_action_sample_size=10, ramp_days=30)
    draws = []
    for seed in (1, 1, 2):
        candidates = expand(catalog) * 1
        candidates[0].propensity = 0.2
        explore(candidates, np.random.default_rng(seed), NOW, settings)
        draws.append(candidates[0].sampled_propensity)
    assert draws[0] == draws[1] != draws[2]
    many = expand(_catalog(*[{"id": f"a{i}", "channels": ["email"], "value": 1} for i in range(4000)]))
    for c in many:
        c.propensity = 0.2
    explore(many, np.random.default_rng(0), NOW, settings)
    sample = np.array([c.sampled_propensity for c in many])
    assert abs(sample.mean() - 0.2) < 0.005
    assert abs(sample.std() - np.sqrt(0.2 * 0.8 / 201)) < 0.003   # Beta(p n, (1-p) n) with n = 200


def test_maturity_ramp_widens_exploration_for_new_actions():
    settings = Exploration(effective_sample_size=200, new_action_sample_size=10, ramp_days=30)
    new = _catalog(*[{"id": f"n{i}", "channels": ["email"], "value": 1, "valid_from": "2026-06-14"}
                     for i in range(3000)])
    old = _catalog(*[{"id": f"o{i}", "channels": ["email"], "value": 1} for i in range(3000)])
    assert maturity(new[0], NOW, 30) == pytest.approx(1 / 30, abs=0.01)
    assert maturity(old[0], NOW, 30) == 1.0
    spreads = []
    for catalog in (new, old):
        candidates = expand(catalog)
        for c in candidates:
            c.propensity = 0.2
        explore(candidates, np.random.default_rng(0), NOW, settings)
        spreads.append(np.std([c.sampled_propensity for c in candidates]))
    assert spreads[0] > 2.5 * spreads[1]


# -- volume -----------------------------------------------------------------------------------------
def test_volume_plan_from_budget_shares_and_ledger():
    catalog = _catalog({"id": "a", "channels": ["sms", "email"], "value": 1, "caps": {"daily": 3}})
    plan = plan_volume(catalog, VolumeSettings(daily_outbound=10, min_channel_share=0.1),
                       {"sms": 0.5, "email": 0.02})
    assert plan.channel_daily == {"sms": 5, "email": 1} and plan.action_daily == {"a": 3}
    ledger = VolumeLedger(plan)
    email = expand(catalog, "email")[0]
    assert ledger.blocking_rule(email, NOW.date()) is None
    ledger.add(email, NOW.date())
    assert ledger.blocking_rule(email, NOW.date()) == "volume: channel email daily limit 1 reached"
    sms = expand(catalog, "sms")[0]
    ledger.add(sms, NOW.date())
    ledger.add(sms, NOW.date())
    assert ledger.blocking_rule(sms, NOW.date()) == "volume: action a daily limit 3 reached"
    assert ledger.blocking_rule(sms, NOW.date() + timedelta(days=1)) is None   # a new day


@pytest.mark.parametrize("raw, message", [
    ({"caps": [{"channel": "fax", "max": 1, "days": 7}]}, r"caps\[0\].channel: unknown channel 'fax'"),
    ({"caps": [{"channel": "sms", "max": -1, "days": 7}]}, r"caps\[0\].max must be an integer >= 0"),
    ({"quiet_hours": {"start": "late", "end": "08:00"}}, "quiet_hours.start must be a time"),
    ({"quiet_hours": {"start": "21:00", "end": "08:00", "channels": {"sms": "shout"}}}, "quiet_hours.channels.sms"),
    ({"default_timezone": "Nowhere/Town"}, "unknown time zone 'Nowhere/Town'"),
    ({"exploration": {"effective_sample_size": 0}}, "exploration.effective_sample_size must be a number >= 1"),
    ({"consent": {"marketing": ["consent_sms"]}}, "consent.marketing must be a list"),
])
def test_invalid_policies_name_the_key(raw, message):
    with pytest.raises(PolicyError, match=message):
        parse_policies(raw)


def test_shipped_policies_are_valid():
    from config.settings import CONFIG_DIR
    from serving.policies import load_policies

    policies = load_policies(CONFIG_DIR / "policies.yaml")
    assert policies.caps and policies.quiet_hours and policies.volume.daily_outbound
