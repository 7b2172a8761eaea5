"""Organic behaviour: browsing sessions, orders and the linking events (logins, binds) that tie ids together.

Everything is drawn as Poisson processes over each person's lifetime at once (vectorised numpy), so
orders follow exactly the rates the churn ground truth is computed from.
"""

from __future__ import annotations

import numpy as np

from simulator.catalog import BROWSE_CHANNELS, CATEGORIES, ORDER_CHANNELS
from simulator.events import CH, Columns, EventLog, hex16, id_columns, splitmix64
from simulator.identities import Identities
from simulator.population import Items, Population, choose_items

_BROWSE_BIAS = np.array([0.6, 0.6, 0.5, 0.0, -0.6, -0.8])   # web, app, mini, oa, ads, guide
_ORDER_BIAS = np.array([0.3, 0.5, 0.4, 0.3, -0.5])           # web, app, mini, pos, guide
_CHURNED_VISIT_SHARE = 0.04
_MINUTE = 1.0 / 1440.0
_CAT = np.array(CATEGORIES, dtype=object)


def _pick(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One column index per row of a non-negative weight matrix (rows must have positive sum)."""
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), weights.shape[1] - 1)


def channel_identifiers(ids: Identities, person: np.ndarray, channel: np.ndarray,
                        rng: np.random.Generator, with_member: bool = False) -> Columns:
    """Identifier columns a channel's system would log for these persons (one event each).

    ``with_member`` adds the member id where the person holds one (logged-in online orders).
    """
    out: Columns = {}
    for c in np.unique(channel):
        rows = np.flatnonzero(channel == c)
        p = person[rows]
        name = list(CH)[c]
        if name in ("web", "paid_ads"):
            types, keep = ["cookie_id"], None
        elif name == "app":
            types, keep = ["device_id"], None
        elif name in ("mini_program", "wechat_oa"):
            types, keep = ["wechat_openid"], None
        elif name in ("sms", "email"):
            types, keep = ["phone" if name == "sms" else "email"], None
        elif name == "pos":
            has_phone, has_card = ids.has("phone")[p], ids.has("pos_card")[p]
            r = rng.integers(0, 3, len(p))
            show_phone = has_phone & ((r != 1) | ~has_card)
            show_card = has_card & ((r != 0) | ~has_phone)
            types = ["phone", "pos_card", "member_id"]
            keep = {"phone": show_phone, "pos_card": show_card, "member_id": show_card}
        else:  # guide: the assistant looks the member up, sometimes by phone
            has_member = ids.has("member_id")[p]
            types = ["member_id", "phone"]
            keep = {"phone": ~has_member | (rng.random(len(p)) < 0.3)}
        if with_member and name in ("web", "app", "mini_program"):
            types = [*types, "member_id"]
        for t, vals in id_columns(ids, p, types, rng, keep).items():
            out.setdefault(t, np.full(len(person), None, dtype=object))[rows] = vals
    return out


def browse_events(pop: Population, ids: Identities, items: Items, cdf: np.ndarray, days: int,
                  rng: np.random.Generator, log: EventLog) -> None:
    """Sessions with logins, page views, product views and add-to-carts; churned persons mostly vanish."""
    reach = ids.reachable()
    cols = [CH[c] for c in BROWSE_CHANNELS]
    w = np.exp(pop.channel_pref[:, cols] + _BROWSE_BIAS) * reach[:, cols]
    can_browse = w.sum(axis=1) > 0
    lo = np.maximum(pop.signup_t, 0.0)
    exposure = np.maximum(days - lo, 0.0)
    counts = rng.poisson(pop.visit_rate * exposure * can_browse)
    person = np.repeat(np.arange(pop.size), counts)
    t = lo[person] + rng.random(len(person)) * exposure[person]
    active = (t < pop.churn_t[person]) | (rng.random(len(person)) < _CHURNED_VISIT_SHARE)
    person, t = person[active], t[active]
    channel = np.array(cols)[_pick(w[person], rng)]

    # logins on web/app link the cookie/device to the member id; some persons never log in
    login_prop = np.where(rng.random(pop.size) < 0.25, 0.0, rng.uniform(0.2, 0.8, pop.size))
    is_login = (np.isin(channel, [CH["web"], CH["app"]]) & ids.has("member_id")[person]
                & (rng.random(len(person)) < login_prop[person]))
    lp, lc = person[is_login], channel[is_login]
    log.add(lp, t[is_login], lc, "login",
            channel_identifiers(ids, lp, lc, rng, with_member=True))

    online = channel != CH["guide"]
    n_pv = np.where(online, 1 + rng.poisson(1.0, len(person)), 0)
    pv_person, pv_ch = np.repeat(person, n_pv), np.repeat(channel, n_pv)
    pv_t = np.repeat(t, n_pv) + rng.uniform(0, 10, len(pv_person)) * _MINUTE
    log.add(pv_person, pv_t, pv_ch, "page_view", channel_identifiers(ids, pv_person, pv_ch, rng))

    n_prod = np.where(online, rng.poisson(1.6, len(person)), 1 + rng.poisson(0.6, len(person)))
    vp, vc = np.repeat(person, n_prod), np.repeat(channel, n_prod)
    vt = np.repeat(t, n_prod) + rng.uniform(1, 20, len(vp)) * _MINUTE
    item = choose_items(cdf, vp, rng)
    log.add(vp, vt, vc, "product_view", channel_identifiers(ids, vp, vc, rng), _item_props(items, item))

    cart = np.isin(vc, [CH["web"], CH["app"], CH["mini_program"]]) & (rng.random(len(vp)) < 0.12)
    cp, cc = vp[cart], vc[cart]
    log.add(cp, vt[cart] + rng.uniform(0.5, 3, len(cp)) * _MINUTE, cc, "add_to_cart",
            channel_identifiers(ids, cp, cc, rng), _item_props(items, item[cart]))


def order_events(pop: Population, ids: Identities, items: Items, cdf: np.ndarray, days: int,
                 rng: np.random.Generator, log: EventLog, id_base: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Orders as a Poisson process at each person's order rate from signup to churn.

    Online orders are preceded by a view and an add-to-cart of the same item. Returns (person, t) of
    every order for the churn ground truth.
    """
    reach = ids.reachable()
    cols = [CH[c] for c in ORDER_CHANNELS]
    w = np.exp(pop.channel_pref[:, cols] + _ORDER_BIAS) * reach[:, cols]
    lo = np.maximum(pop.signup_t, 0.0)
    hi = np.minimum(pop.churn_t, float(days))
    exposure = np.maximum(hi - lo, 0.0)
    counts = rng.poisson(pop.order_rate * exposure)
    person = np.repeat(np.arange(pop.size), counts)
    t = lo[person] + rng.random(len(person)) * exposure[person]
    channel = np.array(cols)[_pick(w[person], rng)]
    item = choose_items(cdf, person, rng)
    qty = 1 + rng.poisson(0.3, len(person))
    amount = np.round(items.price[item] * qty * rng.uniform(0.9, 1.1, len(person)), 2)
    seq = np.uint64(id_base) + np.arange(len(person), dtype=np.uint64)
    order_ids = np.array(["O" + x for x in hex16(splitmix64(seq))], dtype=object)
    props = {"order_id": order_ids, "item_id": items.ids[item], "category": _CAT[items.category[item]],
             "amount": np.array([f"{a:.2f}" for a in amount], dtype=object)}
    log.add(person, t, channel, "order", channel_identifiers(ids, person, channel, rng, with_member=True),
            props)

    online = np.isin(channel, [CH["web"], CH["app"], CH["mini_program"]])
    op, oc, ot = person[online], channel[online], t[online]
    floor = lo[op]
    item_props = _item_props(items, item[online])
    log.add(op, np.maximum(ot - rng.uniform(5, 30, len(op)) * _MINUTE, floor), oc, "product_view",
            channel_identifiers(ids, op, oc, rng), item_props)
    log.add(op, np.maximum(ot - rng.uniform(1, 4, len(op)) * _MINUTE, floor), oc, "add_to_cart",
            channel_identifiers(ids, op, oc, rng), item_props)
    return person, t


# (identifier type, anchor type) -> (channel, event type) of the event that shows both together
_LINKS: dict[tuple[str, str], tuple[str, str]] = {
    ("cookie_id", "member_id"): ("web", "login"), ("cookie_id", "phone"): ("web", "bind"),
    ("cookie_id", "email"): ("web", "bind"),
    ("device_id", "member_id"): ("app", "login"), ("device_id", "phone"): ("app", "login"),
    ("wechat_openid", "member_id"): ("mini_program", "bind"), ("wechat_openid", "phone"): ("mini_program", "bind"),
    ("wechat_unionid", "wechat_openid"): ("wechat_oa", "bind"),
    ("email", "member_id"): ("email", "bind"), ("email", "phone"): ("web", "bind"),
    ("pos_card", "member_id"): ("pos", "bind"), ("pos_card", "phone"): ("pos", "bind"),
    ("phone", "member_id"): ("guide", "bind"),
}
_ANCHORS = ("member_id", "phone", "email", "wechat_openid")
ANONYMOUS_SHARE = 0.01  # persons who never tie their identifiers together


def link_events(pop: Population, ids: Identities, days: int, rng: np.random.Generator,
                log: EventLog) -> None:
    """Binds that tie identifiers together, as in a brand with a loyalty programme.

    Organic binds (WeChat openid+unionid+phone, e-mail signup member+email, in-store member+phone), and
    for all but ``ANONYMOUS_SHARE`` of persons one event pairing each identifier with the person's anchor
    (member id, else phone, else e-mail, else openid) wherever some channel shows that pair together.
    """
    n = pop.size
    lo = np.maximum(pop.signup_t, 0.0)

    def when(p: np.ndarray) -> np.ndarray:
        return lo[p] + rng.random(len(p)) * np.maximum(days - lo[p], 0.0)

    wx = ids.has("wechat_openid") & (ids.has("wechat_unionid") | ids.has("phone")) & (rng.random(n) < 0.8)
    p = np.flatnonzero(wx)
    ch = np.where(rng.random(len(p)) < 0.5, CH["mini_program"], CH["wechat_oa"])
    log.add(p, when(p), ch, "bind", id_columns(ids, p, ["wechat_openid", "wechat_unionid", "phone"], rng))

    em = ids.has("member_id") & ids.has("email") & (rng.random(n) < 0.85)
    p = np.flatnonzero(em)
    log.add(p, when(p), CH["email"], "bind", id_columns(ids, p, ["member_id", "email"], rng))

    mp = ids.has("member_id") & ids.has("phone") & (rng.random(n) < 0.5)
    p = np.flatnonzero(mp)
    log.add(p, when(p), CH["guide"], "bind", id_columns(ids, p, ["member_id", "phone"], rng))

    linking = rng.random(n) >= ANONYMOUS_SHARE
    anchor = np.full(n, "", dtype=object)
    for a in reversed(_ANCHORS):
        anchor[ids.has(a)] = a
    for (id_type, anchor_type), (channel, event_type) in _LINKS.items():
        paired = ids.has("wechat_openid") if id_type == "wechat_unionid" else anchor == anchor_type
        p = np.flatnonzero(linking & ids.has(id_type) & paired)
        log.add(p, when(p), CH[channel], event_type, id_columns(ids, p, [id_type, anchor_type], rng))


def _item_props(items: Items, item: np.ndarray) -> Columns:
    return {"item_id": items.ids[item], "category": _CAT[items.category[item]]}
