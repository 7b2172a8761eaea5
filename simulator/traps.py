"""The traps of real data, planted into one chunk's event table and recorded for the ground truth.

Shared family tablets, store kiosks and shop-assistant terminals used by many customers, phone numbers
recycled to a new person at a known date, clock skew on some devices, late-arriving and duplicated events.
Each function takes the columnar event table (see :meth:`simulator.events.EventLog.table`) and returns the
changed table plus what it did, so the truth frames can say which identifier belonged to whom and when.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.events import CH, ET, hex16, splitmix64
from simulator.identities import Identities, _format_phones
from simulator.population import Population

SKEWED_EVENTS = ("page_view", "product_view", "add_to_cart")  # client-side tracked: device clock
CUSTOMERS_PER_STORE = 2500
TERMINALS_PER_STORE = 2
KIOSK_LOGIN_SHARE = 0.05


def n_stores(customers: int) -> int:
    return max(2, -(-customers // CUSTOMERS_PER_STORE))


def home_store(global_index: np.ndarray, customers: int, salt: int) -> np.ndarray:
    mixed = splitmix64(global_index.astype(np.uint64) ^ np.uint64(salt * 131 + 5))
    return (mixed % np.uint64(n_stores(customers))).astype(np.int64)


def _uuid(x: np.ndarray) -> np.ndarray:
    a, b = hex16(splitmix64(x)), hex16(splitmix64(x + np.uint64(1 << 50)))
    return np.array([f"{p[:8]}-{p[8:12]}-{p[12:16]}-{q[:4]}-{q[4:]}".upper() for p, q in zip(a, b, strict=True)],
                    dtype=object)


def kiosk_cookie(store: np.ndarray, salt: int) -> np.ndarray:
    return np.array(["ck." + h for h in hex16(splitmix64(store.astype(np.uint64) + np.uint64(salt * 977 + 3)))],
                    dtype=object)


def terminal_device(store: np.ndarray, slot: np.ndarray, salt: int) -> np.ndarray:
    base = (store.astype(np.uint64) * np.uint64(16) + slot.astype(np.uint64)) ^ np.uint64(((salt * 7919) + 1) << 33)
    return _uuid(base)


def recycle_phones(table: pd.DataFrame, pop: Population, ids: Identities, share: float,
                   rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pass churned persons' phone numbers to persons signing up later.

    The old holder's events from the hand-over day on lose the phone (events left with no identifier are
    dropped); the new holder's events show the old number. Returns (table, frame of previous_person,
    new_person, handover_t).
    """
    phone = ids.has("phone")
    k = int(round(share * pop.size))
    old = np.flatnonzero(phone & np.isfinite(pop.churn_t))
    handover = pop.churn_t[old] + rng.uniform(5.0, 15.0, len(old))
    new = np.flatnonzero(phone & (pop.signup_t > 0))
    empty = pd.DataFrame({"previous": pd.Series(dtype=np.int64), "new": pd.Series(dtype=np.int64),
                          "handover_t": pd.Series(dtype=float)})
    if k == 0 or len(old) == 0 or len(new) == 0:
        return table, empty
    order = np.argsort(handover)[:k]
    old, handover = old[order], handover[order]
    new = new[np.argsort(pop.signup_t[new])][-len(old):]
    m = min(len(old), len(new))
    old, handover, new = old[:m], handover[:m], new[len(new) - m:]
    ok = handover < pop.signup_t[new]
    old, handover, new = old[ok], handover[ok], new[ok]
    if len(old) == 0:
        return table, empty
    person, t = table["person"].to_numpy(), table["t"].to_numpy()
    cut = pd.Series(handover, index=old).reindex(person).to_numpy()
    lose = ~np.isnan(cut) & (t >= cut) & table["id_phone"].notna().to_numpy()
    phones = table["id_phone"].to_numpy().copy()
    phones[lose] = None
    donor = pd.Series(old, index=new).reindex(person).to_numpy()
    gets = ~np.isnan(donor) & table["id_phone"].notna().to_numpy()
    digits = ids.values["phone"][donor[gets].astype(np.int64)]
    phones[gets] = _format_phones(digits, rng.integers(0, 5, int(gets.sum())))
    table["id_phone"] = phones
    id_cols = [c for c in table.columns if c.startswith("id_")]
    table = table[table[id_cols].notna().any(axis=1).to_numpy()].reset_index(drop=True)
    return table, pd.DataFrame({"previous": old, "new": new, "handover_t": handover})


def share_family_tablets(table: pd.DataFrame, ids: Identities, share: float,
                         rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Some app users use a household member's tablet: their app events show the owner's device id.

    Returns (table, frame of owner, user) with one row per secondary user (1-2 per tablet).
    """
    holders = np.flatnonzero(ids.has("device_id"))
    k = int(round(share * len(ids.values["device_id"])))
    if k == 0 or len(holders) < 3:
        return table, pd.DataFrame({"owner": pd.Series(dtype=np.int64), "user": pd.Series(dtype=np.int64)})
    picked = rng.permutation(holders)[: min(len(holders), 3 * k)]
    owners, users = [], []
    i = 0
    while i + 1 < len(picked) and len(users) < k:
        size = 2 if rng.random() < 0.5 else 1
        group = picked[i + 1:i + 1 + size]
        owners += [picked[i]] * len(group)
        users += list(group)
        i += 1 + size
    pairs = pd.DataFrame({"owner": np.array(owners, dtype=np.int64), "user": np.array(users, dtype=np.int64)})
    owner_of = pd.Series(pairs["owner"].to_numpy(), index=pairs["user"].to_numpy())
    person = table["person"].to_numpy()
    mapped = owner_of.reindex(person).to_numpy()
    rows = ~np.isnan(mapped) & table["id_device_id"].notna().to_numpy()
    devices = table["id_device_id"].to_numpy().copy()
    devices[rows] = ids.values["device_id"][mapped[rows].astype(np.int64)]
    table["id_device_id"] = devices
    return table, pairs


def store_identifiers(table: pd.DataFrame, store: np.ndarray, salt: int,
                      rng: np.random.Generator) -> pd.DataFrame:
    """Shop-assistant terminals log every guide event; some web logins happen on a store's kiosk."""
    person, channel, etype = table["person"].to_numpy(), table["channel"].to_numpy(), table["etype"].to_numpy()
    devices = table["id_device_id"].to_numpy().copy()
    guide = channel == CH["guide"]
    slot = rng.integers(0, TERMINALS_PER_STORE, int(guide.sum()))
    devices[guide] = terminal_device(store[person[guide]], slot, salt)
    cookies = table["id_cookie_id"].to_numpy().copy()
    kiosk = (channel == CH["web"]) & (etype == ET["login"]) & (rng.random(len(table)) < KIOSK_LOGIN_SHARE)
    cookies[kiosk] = kiosk_cookie(store[person[kiosk]], salt)
    trap = table["trap"].to_numpy().copy()
    trap[kiosk] = "store_kiosk"
    table["id_device_id"], table["id_cookie_id"], table["trap"] = devices, cookies, trap
    return table


def skew_clocks(table: pd.DataFrame, ids: Identities, share: float,
                rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Devices whose clock is off by minutes to hours: their client-side app events carry skewed times."""
    n = len(ids.values["device_id"])
    skewed = ids.has("device_id") & (rng.random(n) < share)
    skew_days = np.where(skewed, rng.choice([-1.0, 1.0], n) * rng.uniform(5.0, 360.0, n) / 1440.0, 0.0)
    person, etype = table["person"].to_numpy(), table["etype"].to_numpy()
    rows = ((table["channel"].to_numpy() == CH["app"]) & np.isin(etype, [ET[e] for e in SKEWED_EVENTS])
            & skewed[person])
    t = table["t"].to_numpy().copy()
    t[rows] += skew_days[person[rows]]
    trap = table["trap"].to_numpy().copy()
    trap[rows] = "clock_skew"
    p = np.flatnonzero(skewed)
    table["t"], table["trap"] = t, trap
    return table, pd.DataFrame({"person": p, "skew_seconds": skew_days[p] * 86400.0})


def arrivals(table: pd.DataFrame, late_share: float, rng: np.random.Generator) -> pd.DataFrame:
    """When each event reaches the brand's files: minutes after it happened, or days for the late ones."""
    n = len(table)
    late = rng.random(n) < late_share
    delay = np.where(late, rng.uniform(1.0, 10.0, n), rng.uniform(0.0, 30.0, n) / 1440.0)
    trap = table["trap"].to_numpy().copy()
    trap[late & pd.isna(trap)] = "late_arrival"
    table["arrival_t"], table["trap"] = np.maximum(table["t"].to_numpy(), 0.0) + delay, trap
    return table


def duplicate(table: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """Exact re-sent copies of some events (same event id), some arriving in a later file."""
    n_dup = int(round(len(table) * share))
    if n_dup == 0:
        return table
    rows = np.sort(rng.choice(len(table), n_dup, replace=False))
    copies = table.iloc[rows].copy()
    copies["arrival_t"] = copies["arrival_t"] + np.where(rng.random(n_dup) < 0.5, rng.uniform(0.0, 3.0, n_dup), 0.0)
    copies["trap"] = "duplicate"
    return pd.concat([table, copies]).sort_values("t", kind="stable").reset_index(drop=True)
