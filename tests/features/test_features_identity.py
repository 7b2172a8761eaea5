"""One-ID: trust per identifier type, hub guard, recycled phones, stable ids, incremental = full."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from features.identity import (
    IdentityIndex,
    attach_person_ids,
    read_identity_log,
    read_identity_map,
    read_identity_state,
    resolve_identities,
    update_identities,
    write_identity_map,
    write_identity_state,
)
from features.identity_graph import person_id_of
from features.identity_rules import IdentityRules, load_identity_rules
from features.privacy import key_identifier

SALT = b"id-test-salt"
PH = key_identifier("phone", "13800138000", SALT)
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _events(rows: list[tuple[float, dict]]) -> pd.DataFrame:
    """(day offset, identifiers) → lake-like events."""
    return pd.DataFrame({
        "event_id": [f"e{i}" for i in range(len(rows))],
        "ts": [T0 + pd.Timedelta(days=d) for d, _ in rows],
        "identifiers": [json.dumps(ids) for _, ids in rows],
    })


def _by_node(identity: pd.DataFrame) -> dict[str, str | None]:
    current = identity[identity["valid_to"].isna()]
    return dict(zip(current["id_type"] + ":" + current["id_key"], current["person_id"], strict=True))


EVENTS = _events([
    (0, {"member_id": "M1", "device_id": "D1"}),          # login on the app
    (1, {"device_id": "D1"}),
    (2, {"cookie_id": "C1", "member_id": "M1"}),
    (3, {"phone": PH, "member_id": "M1"}),                # bind
    (4, {"cookie_id": "C9"}),                             # an anonymous visitor
    (5, {"wechat_openid": "O1", "wechat_unionid": "U1"}),
    (6, {"wechat_unionid": "U1", "phone": PH}),           # WeChat bind joins the two groups
    (7, {"pos_card": "PC5"}),
])


def test_rules_file_matches_defaults_and_validates():
    assert load_identity_rules() == IdentityRules()
    with pytest.raises(ValueError, match="trust.cookie_id"):
        IdentityRules(trust={**IdentityRules().trust, "cookie_id": "sometimes"})
    with pytest.raises(ValueError, match="max_persons.weak"):
        IdentityRules(max_persons={"strong": 1, "medium": 1, "weak": 0})


def test_co_occurring_identifiers_are_one_person_with_the_oldest_strong_id():
    identity = resolve_identities(EVENTS)
    assert list(identity.columns) == ["id_type", "id_key", "person_id", "shared", "valid_from", "valid_to"]
    by_id = _by_node(identity)
    big = ["member_id:M1", "device_id:D1", "cookie_id:C1", f"phone:{PH}", "wechat_openid:O1",
           "wechat_unionid:U1"]
    assert {by_id[n] for n in big} == {person_id_of("member_id:M1")}   # earliest strong identifier
    assert by_id["cookie_id:C9"] == person_id_of("cookie_id:C9")
    assert identity["person_id"].nunique() == 3
    assert not identity["shared"].any()


def test_weak_identifiers_do_not_link_each_other():
    identity = resolve_identities(_events([(0, {"cookie_id": "C1", "device_id": "D1"}),
                                           (1, {"pos_card": "PC1", "device_id": "D1"})]))
    assert identity["person_id"].nunique() == 3


def test_person_ids_stable_across_reruns_and_order():
    first = resolve_identities(EVENTS)
    shuffled = EVENTS.sample(frac=1.0, random_state=3).reset_index(drop=True)
    shuffled["identifiers"] = [json.dumps(dict(reversed(list(json.loads(s).items()))))
                               for s in shuffled["identifiers"]]
    pd.testing.assert_frame_equal(first, resolve_identities(shuffled))


@pytest.mark.parametrize("users", [2, 12])
def test_shared_device_links_nobody(users):
    """A family tablet (2 users) or a store kiosk (12) is kept, flagged shared, and joins no persons."""
    rows = []
    for u in range(users):
        rows += [(u, {"device_id": "TAB", "member_id": f"M{u}"}), (u + 0.5, {"member_id": f"M{u}", "phone": f"p{u}"})]
    rows += [(30, {"device_id": "TAB"})]
    events = _events(rows)
    identity = resolve_identities(events)
    by_id = _by_node(identity)
    assert by_id["device_id:TAB"] is None
    assert identity.loc[identity["id_key"] == "TAB", "shared"].item()
    assert len({by_id[f"member_id:M{u}"] for u in range(users)}) == users
    attached = attach_person_ids(events, identity)
    assert attached["person_id"].iloc[-1] is None                       # anonymous use of the kiosk
    assert attached["person_id"].iloc[0] == by_id["member_id:M0"]       # a login there still names M0
    assert IdentityIndex(identity).lookup("device_id", "TAB") is None


def test_recycled_phone_splits_into_eras_by_owner():
    events = _events([
        (1, {"member_id": "MA", "phone": PH}),        # owner A binds
        (10, {"phone": PH, "pos_card": "CA"}),        # A pays at the till
        (20, {"phone": PH}),                          # SMS to A
        (100, {"member_id": "MB", "phone": PH}),      # the number now belongs to B
        (60, {"phone": PH, "pos_card": "CB"}),        # B pays before binding (after a dormant gap)
        (110, {"phone": PH}),
    ])
    identity = resolve_identities(events)
    eras = identity[identity["id_type"] == "phone"]
    assert len(eras) == 2 and not eras["shared"].any()
    by_id = _by_node(identity)
    pa, pb = person_id_of("member_id:MA"), by_id["member_id:MB"]
    assert by_id["member_id:MA"] == pa != pb
    assert by_id["pos_card:CA"] == pa and by_id["pos_card:CB"] == pb
    boundary = eras["valid_from"].dropna().item()
    assert T0 + pd.Timedelta(days=10) < boundary <= T0 + pd.Timedelta(days=60)
    attached = attach_person_ids(events, identity)
    assert attached["person_id"].tolist() == [pa, pa, pa, pb, pb, pb]
    assert IdentityIndex(identity).lookup("phone", PH) == pb              # the current owner


def test_phone_used_by_two_members_at_once_is_shared():
    events = _events([(1, {"member_id": "MA", "phone": PH}), (2, {"member_id": "MB", "phone": PH}),
                      (3, {"member_id": "MA", "phone": PH})])
    by_id = _by_node(resolve_identities(events))
    assert by_id[f"phone:{PH}"] is None and by_id["member_id:MA"] != by_id["member_id:MB"]


def test_incremental_equals_full_and_logs_merges_and_splits(tmp_path):
    recycled = _events([(10, {"phone": "p9", "member_id": "M9"}), (60, {"phone": "p9", "pos_card": "C8"}),
                        (100, {"phone": "p9", "member_id": "M8"}),           # p9 passed to a new owner
                        (101, {"device_id": "D1", "member_id": "M8"})])      # D1 becomes a shared tablet
    all_events = pd.concat([EVENTS, recycled], ignore_index=True)
    state = None
    for i, day in enumerate([all_events.iloc[[i]] for i in range(len(all_events))]):
        state = update_identities(state, day, ts=T0 + pd.Timedelta(days=i))
        write_identity_state(state, tmp_path)
        state = read_identity_state(tmp_path)
    full = resolve_identities(all_events)
    pd.testing.assert_frame_equal(state.map, full)
    again = state.graph.update(EVENTS)                                        # feeding events twice is a no-op
    pd.testing.assert_frame_equal(again.edges, state.graph.edges)
    log = read_identity_log(tmp_path)
    assert list(log.columns) == ["ts", "kind", "from", "to", "reason"]
    merges = log[log["kind"] == "merge"]
    assert ((merges["from"] == person_id_of("wechat_openid:O1"))
            & (merges["to"] == person_id_of("member_id:M1"))).any()        # the older id survives
    splits = log[log["kind"] == "split"]
    assert (splits["from"] == person_id_of("member_id:M9")).any()
    assert set(splits["reason"]) == {"recycled_identifier"}
    detached = log[log["kind"] == "detach"]
    assert detached["reason"].eq("shared_identifier").all() and len(detached) == 1


def test_attach_index_and_roundtrip(tmp_path):
    identity = resolve_identities(EVENTS)
    events = attach_person_ids(EVENTS, identity)
    assert events["person_id"].notna().all()
    assert events.loc[0, "person_id"] == events.loc[6, "person_id"] != events.loc[4, "person_id"]
    write_identity_map(identity, tmp_path)
    back = read_identity_map(tmp_path)
    pd.testing.assert_frame_equal(back, identity)
    index = IdentityIndex(back)
    assert index.lookup("cookie_id", "C1") == events.loc[0, "person_id"]
    assert index.lookup_raw("phone", "+86 138-0013-8000", SALT) == events.loc[0, "person_id"]
    assert index.lookup_raw("phone", "garbage", SALT) is None
