"""One-ID: identifiers seen together are one person; person ids do not depend on run or row order."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from features.identity import (
    IdentityIndex,
    attach_person_ids,
    identity_report,
    read_identity_map,
    resolve_identities,
    write_identity_map,
)
from features.privacy import key_identifier

SALT = b"id-test-salt"
PH = key_identifier("phone", "13800138000", SALT)


def _events(id_lists: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({
        "event_id": [f"e{i}" for i in range(len(id_lists))],
        "ts": pd.date_range("2026-01-01", periods=len(id_lists), freq="h", tz="UTC"),
        "identifiers": [json.dumps(d) for d in id_lists],
    })


EVENTS = _events([
    {"member_id": "M1", "device_id": "D1"},          # login on the app
    {"device_id": "D1"},
    {"cookie_id": "C1", "device_id": "D1"},
    {"phone": PH, "member_id": "M1"},                # bind
    {"cookie_id": "C9"},                             # an anonymous visitor
    {"wechat_openid": "O1", "wechat_unionid": "U1"},
    {"wechat_unionid": "U1", "phone": PH},           # WeChat bind joins the two groups
    {"pos_card": "PC5"},
])


def _expected_pid(nodes: list[str]) -> str:
    return "P" + hashlib.sha1(min(nodes).encode()).hexdigest()[:12]


def test_co_occurring_identifiers_are_one_person():
    identity = resolve_identities(EVENTS)
    assert list(identity.columns) == ["id_type", "id_key", "person_id"]
    by_id = dict(zip(identity["id_type"] + ":" + identity["id_key"], identity["person_id"], strict=True))
    big = ["member_id:M1", "device_id:D1", "cookie_id:C1", f"phone:{PH}", "wechat_openid:O1",
           "wechat_unionid:U1"]
    assert {by_id[n] for n in big} == {_expected_pid(big)}
    assert by_id["cookie_id:C9"] == _expected_pid(["cookie_id:C9"])
    assert by_id["pos_card:PC5"] == _expected_pid(["pos_card:PC5"])
    assert identity["person_id"].nunique() == 3
    assert identity["person_id"].str.fullmatch(r"P[0-9a-f]{12}").all()


def test_person_ids_stable_across_reruns_and_order():
    first = resolve_identities(EVENTS)
    shuffled = EVENTS.sample(frac=1.0, random_state=3).reset_index(drop=True)
    shuffled["identifiers"] = [json.dumps(dict(reversed(list(json.loads(s).items()))))
                               for s in shuffled["identifiers"]]
    pd.testing.assert_frame_equal(first, resolve_identities(shuffled))
    pd.testing.assert_frame_equal(first, resolve_identities(EVENTS))


def test_merge_keeps_the_id_of_the_smaller_component():
    before = resolve_identities(EVENTS.iloc[:6])
    after = resolve_identities(EVENTS)
    old = dict(zip(before["id_key"], before["person_id"], strict=True))
    new = dict(zip(after["id_key"], after["person_id"], strict=True))
    assert old["M1"] != old["O1"] and new["M1"] == new["O1"]
    assert new["M1"] in {old["M1"], old["O1"]}
    assert new["C9"] == old["C9"]


def test_attach_and_index_lookup(tmp_path):
    identity = resolve_identities(EVENTS)
    events = attach_person_ids(EVENTS, identity)
    assert events["person_id"].notna().all()
    assert events.loc[0, "person_id"] == events.loc[6, "person_id"] != events.loc[4, "person_id"]
    unknown = attach_person_ids(_events([{"cookie_id": "never"}]), identity)
    assert unknown["person_id"].isna().all()

    write_identity_map(identity, tmp_path)
    index = IdentityIndex(read_identity_map(tmp_path))
    assert len(index) == len(identity)
    assert index.lookup("cookie_id", "C1") == events.loc[0, "person_id"]
    assert index.lookup("cookie_id", "nope") is None
    assert index.lookup_raw("phone", "+86 138-0013-8000", SALT) == events.loc[0, "person_id"]
    assert index.lookup_raw("phone", "garbage", SALT) is None


def test_identity_report_pairwise_precision_recall():
    identity = resolve_identities(EVENTS)
    # truth: the WeChat pair is really someone else (so the bind merged two people), C9 is person A
    truth = pd.DataFrame([
        ("member_id", "M1", "A"), ("device_id", "D1", "A"), ("cookie_id", "C1", "A"),
        ("phone", "+8613800138000", "A"), ("wechat_openid", "O1", "B"), ("wechat_unionid", "U1", "B"),
        ("cookie_id", "C9", "A"),
    ], columns=["id_type", "id_value", "person_key"])
    report = identity_report(identity, truth, SALT)
    # predicted pairs: C(6,2)=15 in the big cluster; true pairs: C(5,2)+C(2,2)=11; correct: C(4,2)+1=7
    assert report["identifiers_matched"] == 7
    assert report["pair_precision"] == pytest.approx(7 / 15)
    assert report["pair_recall"] == pytest.approx(7 / 11)
