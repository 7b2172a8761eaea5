"""Who carries which identifiers, their raw (messy) spellings and their canonical values.

Each person holds 2-4 identifier types, one value per type; the channels a person can use follow from
them (a cookie for web and ads, a device for the app, an openid for WeChat, a phone for SMS and POS ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.catalog import CHANNELS, ID_TYPES
from simulator.events import hex16, splitmix64

_TYPE_WEIGHT = {"phone": 0.8, "member_id": 0.8, "cookie_id": 0.6, "wechat_openid": 0.5, "device_id": 0.45,
                "email": 0.35, "pos_card": 0.25}
_FIRST = ("wei", "fang", "na", "min", "jing", "li", "qiang", "lei", "jun", "yang", "alice", "kevin",
          "grace", "tony", "lucy", "hao", "xin", "yu", "ting", "bo")
_LAST = ("wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma",
         "zhu", "hu", "guo", "he", "lin", "luo", "gao")
_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "example.com", "sina.com")
_B64 = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))

# which identifier types let a person use a channel (any one suffices)
CHANNEL_ID_TYPES: dict[str, tuple[str, ...]] = {
    "web": ("cookie_id",), "paid_ads": ("cookie_id",), "app": ("device_id",),
    "mini_program": ("wechat_openid",), "wechat_oa": ("wechat_openid",), "sms": ("phone",),
    "email": ("email",), "pos": ("phone", "pos_card"), "guide": ("member_id", "phone"),
}


@dataclass(frozen=True)
class Identities:
    """Canonical identifier values per type: object arrays of length n_persons, None where absent.

    Phones are stored as 11 national digits, e-mails in their display spelling; :meth:`raw` renders the
    spellings seen in events and :func:`canonical_frame` the ground-truth canonical form.
    """

    values: dict[str, np.ndarray]

    def has(self, id_type: str) -> np.ndarray:
        return np.array([v is not None for v in self.values[id_type]], dtype=bool)

    def reachable(self) -> np.ndarray:
        """(n, 9) bool: person can be seen on / reached through each channel (CHANNELS order)."""
        cols = [np.logical_or.reduce([self.has(t) for t in CHANNEL_ID_TYPES[c]]) for c in CHANNELS]
        return np.stack(cols, axis=1)

    def raw(self, id_type: str, person: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Raw values as a channel system would log them (phones and e-mails in varying formats)."""
        vals = self.values[id_type][person]
        if id_type == "phone":
            return _format_phones(vals, rng.integers(0, 5, len(vals)))
        if id_type == "email":
            return _format_emails(vals, rng.integers(0, 4, len(vals)))
        return vals


def _format_phones(digits: np.ndarray, variant: np.ndarray) -> np.ndarray:
    out = np.empty(len(digits), dtype=object)
    for i, (d, v) in enumerate(zip(digits, variant, strict=True)):
        if d is None:
            out[i] = None
        elif v == 0:
            out[i] = d
        elif v == 1:
            out[i] = f"+86 {d[:3]} {d[3:7]} {d[7:]}"
        elif v == 2:
            out[i] = f"{d[:3]}-{d[3:7]}-{d[7:]}"
        elif v == 3:
            out[i] = f"+86{d}"
        else:
            out[i] = f"86 {d[:3]} {d[3:7]} {d[7:]}"
    return out


def _format_emails(emails: np.ndarray, variant: np.ndarray) -> np.ndarray:
    out = np.empty(len(emails), dtype=object)
    for i, (e, v) in enumerate(zip(emails, variant, strict=True)):
        if e is None:
            out[i] = None
        elif v == 0:
            out[i] = e
        elif v == 1:
            out[i] = e.lower()
        elif v == 2:
            local, domain = e.split("@")
            out[i] = f"{local}@{domain.upper()}"
        else:
            out[i] = f"  {e} "
    return out


def canonical_phone(digits: str) -> str:
    return f"+86{digits}"


def distinct_ints(rng: np.random.Generator, n: int, high: int) -> np.ndarray:
    """n distinct ints in [0, high), in random order."""
    if n > high:
        raise ValueError(f"cannot draw {n} distinct ints below {high}")
    got = np.empty(0, dtype=np.int64)
    while len(got) < n:
        draw = np.concatenate([got, rng.integers(0, high, int(n * 1.2) + 10)])
        _, first = np.unique(draw, return_index=True)
        got = draw[np.sort(first)]
    return got[:n]


_LOYALTY_SHARE = 0.9  # persons holding neither member id nor phone who still join the loyalty programme


def _choose_types(n: int, rng: np.random.Generator) -> list[set[str]]:
    names = list(_TYPE_WEIGHT)
    weights = np.array([_TYPE_WEIGHT[t] for t in names])
    k = rng.choice([2, 3, 4], size=n, p=[0.3, 0.45, 0.25])
    keys = rng.random((n, len(names))) ** (1.0 / weights)  # weighted sampling without replacement
    order = np.argsort(-keys, axis=1)
    add_union = rng.random(n) < 0.7
    join = rng.random(n) < _LOYALTY_SHARE
    out = []
    for i in range(n):
        chosen: list[str] = []
        for j in order[i]:
            if len(chosen) >= k[i]:
                break
            t = names[j]
            chosen.append(t)
            if t == "wechat_openid" and add_union[i] and len(chosen) < k[i]:
                chosen.append("wechat_unionid")
        types = set(chosen)
        if join[i] and not types & {"member_id", "phone"}:
            types.add("member_id")
        out.append(types)
    return out


def _permute(index: np.ndarray, space: int, salt: int) -> np.ndarray:
    """A seed-dependent injection of global person indices into [0, space): affine map with a unit multiplier."""
    mult = 1_000_003  # prime, so coprime with every space used here (powers of 2, 5 and 7)
    shift = int(splitmix64(np.array([salt], dtype=np.uint64))[0] % np.uint64(space))
    return (index.astype(np.int64) * mult + shift) % space


def sample_identities(n: int, rng: np.random.Generator, offset: int = 0, salt: int = 0) -> Identities:
    """Give ``n`` persons (global indices ``offset`` ..) 2-4 identifier types with globally unique values.

    Values derive from the global index through injections, so chunks of persons simulated apart never
    collide; ``salt`` (from the world seed) varies them between worlds.
    """
    types = _choose_types(n, rng)
    g = np.arange(offset, offset + n, dtype=np.int64)
    phones = [f"1{3 + x // 10**9}{x % 10**9:09d}" for x in _permute(g, 7 * 10**9, salt + 1)]
    first = rng.integers(0, len(_FIRST), n)
    last = rng.integers(0, len(_LAST), n)
    dom = rng.integers(0, len(_DOMAINS), n)
    tags = _permute(g, 10**8, salt + 2)
    emails = [f"{_FIRST[f].capitalize()}.{_LAST[s].capitalize()}{t:08d}@{_DOMAINS[d].capitalize()}"
              for f, s, t, d in zip(first, last, tags, dom, strict=True)]
    members = [f"M{x:09d}" for x in _permute(g, 10**9, salt + 3)]
    gu = g.astype(np.uint64)
    hi = hex16(splitmix64(gu ^ np.uint64(salt * 4 + 1)) | np.uint64(1))
    lo = hex16(splitmix64(gu + np.uint64(salt) * np.uint64(1 << 40)))
    devices = [f"{a[:8]}-{a[8:12]}-{a[12:16]}-{b[:4]}-{b[4:]}".upper() for a, b in zip(hi, lo, strict=True)]
    cookies = ["ck." + x for x in hex16(splitmix64(gu + np.uint64(salt) * np.uint64(1 << 41) + np.uint64(7)))]
    body = _B64[rng.integers(0, 64, (n, 16))]
    uniq = hex16(splitmix64(gu + np.uint64(salt) * np.uint64(1 << 42) + np.uint64(11)))
    openids = ["o" + "".join(row) + u[:11] for row, u in zip(body, uniq, strict=True)]
    unionids = ["u" + o[1:][::-1] for o in openids]  # unique because openids are
    cards = [f"PC{x:012d}" for x in _permute(g, 10**12, salt + 4)]
    pools = {"phone": phones, "email": emails, "member_id": members, "device_id": devices,
             "cookie_id": cookies, "wechat_openid": openids, "wechat_unionid": unionids, "pos_card": cards}
    values = {}
    for t in ID_TYPES:
        col = np.empty(n, dtype=object)
        for i in range(n):
            col[i] = pools[t][i] if t in types[i] else None
        values[t] = col
    return Identities(values=values)


def canonical_frame(ids: Identities, person_keys: np.ndarray) -> pd.DataFrame:
    """Ground truth: (id_type, id_value, person_key) with phones in E.164 and e-mails lowercased/stripped."""
    rows: list[tuple[str, str, str]] = []
    for t in ID_TYPES:
        for v, key in zip(ids.values[t], person_keys, strict=True):
            if v is None:
                continue
            if t == "phone":
                v = canonical_phone(v)
            elif t == "email":
                v = v.strip().lower()
            rows.append((t, v, key))
    return pd.DataFrame(rows, columns=["id_type", "id_value", "person_key"])
