"""Consent, the brand's logging policy (touches) and the true response model.

The logging policy touches a person on a day with a small probability, picks a channel uniformly among
the outbound channels consented at that time and an action uniformly among that channel's actions, and
records that propensity, so off-policy evaluation of other policies is possible later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.behaviour import channel_identifiers
from simulator.catalog import ACTION_IDS, ACTIONS, CATEGORIES, CHANNELS, CONSENT_CHANNELS, actions_on
from simulator.events import CH, EventLog, hex16, splitmix64, take
from simulator.identities import Identities
from simulator.population import Population

_BASE = np.array([ACTIONS[a]["base_logit"] for a in ACTION_IDS])
_DISCOUNT = np.array([ACTIONS[a]["discount"] for a in ACTION_IDS])
_ACTION_CAT = np.array([CATEGORIES.index(ACTIONS[a]["category"]) if ACTIONS[a]["category"] else -1
                        for a in ACTION_IDS])
_REGRANT_SHARE = 0.3  # withdrawn consents given again later in the window
_COLS = np.array([CH[c] for c in CONSENT_CHANNELS])
_CHANNEL_ACTIONS = [np.array([ACTION_IDS.index(a) for a in actions_on(c)]) for c in CONSENT_CHANNELS]
# response weights: channel preference, category affinity, price sensitivity × discount, engagement, churn
W_CHANNEL, W_AFFINITY, W_DISCOUNT, W_ENGAGEMENT, W_CHURNED, W_WELCOME_NEW, W_RECO = 0.9, 0.8, 10.0, 0.7, 2.5, 1.0, 0.4


@dataclass(frozen=True)
class Consent:
    """Per person × consent channel (CONSENT_CHANNELS order): when asked, granted, when withdrawn (inf) and
    when granted again after a withdrawal (inf): consent changes over time."""

    asked: np.ndarray
    t: np.ndarray
    granted: np.ndarray
    withdraw_t: np.ndarray
    regrant_t: np.ndarray


def conversion_probability(pop: Population, person: np.ndarray, action: np.ndarray, channel: np.ndarray,
                           t: np.ndarray) -> np.ndarray:
    """True P(conversion | touch) for action indices (ACTION_IDS) on channel indices (CHANNELS) at time t.

    sigmoid(base + w1·channel_pref + w2·log category affinity + w3·price_sens·discount + w4·engagement
    − w5·churned + welcome bonus for persons signed up < 30 days ago + taste bonus for recommendations).
    """
    cat = _ACTION_CAT[action]
    log_aff = np.clip(np.log(pop.affinity[person, np.maximum(cat, 0)] * len(CATEGORIES)), -2.5, 2.0)
    affinity = np.where(cat >= 0, log_aff, 0.0)
    churned = t >= pop.churn_t[person]
    new = (t - pop.signup_t[person]) < 30
    welcome = (action == ACTION_IDS.index("welcome_coupon")) & new
    reco = action == ACTION_IDS.index("product_reco")
    logit = (_BASE[action] + W_CHANNEL * pop.channel_pref[person, channel] + W_AFFINITY * affinity
             + W_DISCOUNT * pop.price_sensitivity[person] * _DISCOUNT[action]
             + W_ENGAGEMENT * pop.engagement[person] - W_CHURNED * churned
             + W_WELCOME_NEW * welcome + W_RECO * reco * np.clip(pop.engagement[person] + 1, 0, 3))
    return 1.0 / (1.0 + np.exp(-logit))


def consent_events(pop: Population, ids: Identities, days: int, withdraw_share: float,
                   rng: np.random.Generator, log: EventLog) -> Consent:
    """Consent asked at signup (or window start) for every reachable outbound channel; few withdrawals."""
    n, k = pop.size, len(CONSENT_CHANNELS)
    asked = ids.reachable()[:, _COLS]
    t = np.maximum(pop.signup_t, 0.0)[:, None] + rng.uniform(0.0, 0.02, (n, k))
    pref = pop.channel_pref[:, _COLS]
    granted = asked & (rng.random((n, k)) < 0.4 + 0.4 / (1.0 + np.exp(-pref)))
    withdraw = granted & (rng.random((n, k)) < withdraw_share)
    withdraw_t = np.where(withdraw, t + rng.random((n, k)) * np.maximum(days - t, 0.0), np.inf)
    regrant = withdraw & (rng.random((n, k)) < _REGRANT_SHARE)
    regrant_t = np.where(regrant, withdraw_t + rng.random((n, k)) * np.maximum(days - withdraw_t, 0.0), np.inf)
    regrant = regrant & (regrant_t < days)
    regrant_t = np.where(regrant, regrant_t, np.inf)
    for j, c in enumerate(CONSENT_CHANNELS):
        for flag, times, mask in ((None, t[:, j], asked[:, j]), (False, withdraw_t[:, j], withdraw[:, j]),
                                  (True, regrant_t[:, j], regrant[:, j])):
            p = np.flatnonzero(mask)
            g = granted[p, j] if flag is None else np.full(len(p), flag, dtype=bool)
            props = {"consent_channel": np.full(len(p), c, dtype=object),
                     "purpose": np.full(len(p), "marketing", dtype=object),
                     "granted": np.where(g, "true", "false").astype(object)}
            ch = np.full(len(p), CH[c])
            log.add(p, times[p], ch, "consent", channel_identifiers(ids, p, ch, rng), props)
    return Consent(asked=asked, t=t, granted=granted, withdraw_t=withdraw_t, regrant_t=regrant_t)


def campaign_events(pop: Population, ids: Identities, consent: Consent, days: int, touch_rate: float,
                    rng: np.random.Generator, log: EventLog, person_keys: np.ndarray,
                    id_base: int = 0) -> pd.DataFrame:
    """Touches by the logging policy and the opens/clicks/conversions they cause; returns truth responses.

    ``id_base`` makes touch ids unique across the person chunks of one world.
    """
    n = pop.size
    person, day = np.nonzero(rng.random((n, days)) < touch_rate)
    allowed = (consent.granted[person] & (np.floor(consent.t[person]) < day[:, None])
               & ((consent.withdraw_t[person] >= day[:, None] + 1) | (consent.regrant_t[person] < day[:, None])))
    n_allowed = allowed.sum(axis=1)
    ok = n_allowed > 0
    person, day, allowed, n_allowed = person[ok], day[ok], allowed[ok], n_allowed[ok]
    m = len(person)
    t = day + rng.random(m)
    # uniform channel among allowed: the r-th allowed column
    r = (rng.random(m) * n_allowed).astype(int)
    slot = np.argmax(np.cumsum(allowed, axis=1) > r[:, None], axis=1)
    n_actions = np.array([len(a) for a in _CHANNEL_ACTIONS])[slot]
    a_pos = (rng.random(m) * n_actions).astype(int)
    action = np.array([_CHANNEL_ACTIONS[s][i] for s, i in zip(slot, a_pos, strict=True)], dtype=np.int64)
    channel = _COLS[slot]
    propensity = 1.0 / n_allowed / n_actions
    touch_id = np.array(["tc_" + x for x in hex16(splitmix64(id_base + np.arange(m, dtype=np.uint64)))],
                        dtype=object)
    action_name = np.array(ACTION_IDS, dtype=object)[action]

    p_conv = conversion_probability(pop, person, action, channel, t)
    converted = rng.random(m) < p_conv
    pref = pop.channel_pref[person, channel]
    churned = t >= pop.churn_t[person]
    p_open = 1.0 / (1.0 + np.exp(-(-0.4 + 0.8 * pref + 0.3 * pop.engagement[person] - 1.5 * churned)))
    opened = converted | (rng.random(m) < p_open)
    clicked = converted | (opened & (rng.random(m) < 1.0 / (1.0 + np.exp(-(-1.3 + 0.5 * pref)))))
    t_conv = t + np.minimum(rng.exponential(1.2, m), 7.0)
    t_open = t + (t_conv - t) * rng.uniform(0.0, 0.3, m)
    t_click = t_open + (t_conv - t_open) * rng.uniform(0.0, 0.9, m)
    amount = np.round(rng.lognormal(np.log(120), 0.5, m) * (1 - _DISCOUNT[action]), 2)

    base = {"touch_id": touch_id, "action_id": action_name}
    ident = channel_identifiers(ids, person, channel, rng)
    log.add(person, t, channel, "touch", ident,
            {**base, "logging_propensity": np.array([repr(float(x)) for x in propensity], dtype=object)})
    for kind, mask, times in (("open", opened, t_open), ("click", clicked, t_click)):
        log.add(person[mask], times[mask], channel[mask], kind, take(ident, mask), take(base, mask))
    amt = np.array([f"{a:.2f}" for a in amount], dtype=object)
    log.add(person[converted], t_conv[converted], channel[converted], "conversion", take(ident, converted),
            {**take(base, converted), "amount": amt[converted]})

    return pd.DataFrame({
        "touch_id": touch_id, "person_key": person_keys[person], "action_id": action_name,
        "channel": np.array(CHANNELS, dtype=object)[channel],
        "ts": t, "logging_propensity": propensity, "p_convert": p_conv,
        "converted": converted & (t_conv < days),
    })
