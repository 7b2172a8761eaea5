"""Behaviour of the simulated world: contract of the raw feed, consistency with the ground truth."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from world_fixtures import SMALL, canonical

from simulator import CHANNELS, CONSENT_CHANNELS, WorldConfig, simulate, write_world

RAW_COLUMNS = ["event_id", "ts", "channel", "event_type", "identifiers", "properties"]
TINY = WorldConfig(customers=150, days=40, seed=3)


def test_same_seed_gives_identical_frames():
    a, b = simulate(TINY), simulate(TINY)
    for name in ("events", "identifiers", "persons", "churn", "responses", "items", "shared_identifiers", "traps"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_different_seed_differs():
    a = simulate(TINY)
    b = simulate(WorldConfig(customers=150, days=40, seed=4))
    assert not a.events["identifiers"].equals(b.events["identifiers"])
    assert not a.persons["engagement"].equals(b.persons["engagement"])


def test_columns_and_dtypes(world):
    events = world.events
    assert list(events.columns) == RAW_COLUMNS
    assert str(events["ts"].dtype) == "datetime64[ns, UTC]"
    for col in ("event_id", "channel", "event_type", "identifiers", "properties"):
        assert all(isinstance(v, str) for v in events[col]), col
    skewed = events["event_id"].isin(world.traps.loc[world.traps["trap"] == "clock_skew", "event_id"])
    assert events.loc[~skewed, "ts"].min() >= SMALL.start_ts
    assert events.loc[~skewed, "ts"].max() < SMALL.start_ts + pd.Timedelta(days=SMALL.days)
    assert set(world.identifiers.columns) == {"id_type", "id_value", "person_key", "valid_from", "valid_to",
                                              "shared"}
    assert {"id_type", "id_value", "kind", "person_key"} <= set(world.shared_identifiers.columns)
    assert {"event_id", "trap", "detail"} <= set(world.traps.columns)
    assert {"person_key", "signup_at", "churned_at"} <= set(world.persons.columns)
    assert list(world.churn.columns) == ["person_key", "as_of", "p_no_order_30d", "no_order_30d"]
    assert {"touch_id", "person_key", "action_id", "channel", "p_convert", "converted"} <= set(
        world.responses.columns)
    assert {"item_id", "category", "popularity"} <= set(world.items.columns)


def test_all_channels_and_event_types_present(world):
    assert set(world.events["channel"]) == set(CHANNELS)
    assert {"page_view", "product_view", "add_to_cart", "login", "bind", "order", "touch", "open", "click",
            "conversion", "consent"} == set(world.events["event_type"])
    orders = world.events[world.events["event_type"] == "order"]
    assert {"web", "app", "mini_program", "pos"} <= set(orders["channel"])


def test_event_ids_unique_except_planted_duplicates(world):
    events = world.events
    dup = events[events["event_id"].duplicated(keep=False)]
    assert len(dup) > 0
    # a planted duplicate is an exact copy of its original row
    assert dup.drop_duplicates().shape[0] == dup["event_id"].nunique()
    unique = events.drop_duplicates()
    assert unique["event_id"].is_unique
    share = (len(events) - len(unique)) / len(unique)
    assert 0.003 < share < 0.008


def test_every_raw_identifier_maps_to_one_true_person(world, resolved):
    phone_re = re.compile(r"^\+861[3-9]\d{9}$")
    assert resolved["person_key"].notna().all()
    for ids in resolved["ids"]:
        assert ids, "event without identifiers"
        for t, v in ids.items():
            if t == "phone":
                assert phone_re.match(canonical(t, v)), v
    # an event's personal identifiers name its true person; only shared ones (tablet, kiosk) name nobody
    agree = [k == {p} or not k for k, p in zip(resolved["id_persons"], resolved["person_key"], strict=True)]
    assert all(agree)
    assert resolved["id_persons"].map(len).eq(1).mean() > 0.99
    personal = world.identifiers[world.identifiers["valid_from"].isna()]
    assert personal.groupby(["id_type", "id_value"]).size().max() == 1
    per_person = world.identifiers.groupby("person_key").size()
    assert per_person.between(1, 5).all() and per_person.between(2, 5).mean() > 0.98


def test_raw_pii_comes_in_messy_variants(resolved):
    phones = {v for ids in resolved["ids"] for t, v in ids.items() if t == "phone"}
    emails = {v for ids in resolved["ids"] for t, v in ids.items() if t == "email"}
    assert any(v.startswith("+86 ") for v in phones) and any(re.fullmatch(r"1\d{10}", v) for v in phones)
    assert any("-" in v for v in phones)
    assert any(v != v.strip() for v in emails) and any(v != v.lower() for v in emails)


def test_linking_events_tie_identifiers_together(resolved):
    logins = resolved[resolved["event_type"] == "login"]
    ok = [bool({"member_id", "phone"} & set(d)) and bool({"cookie_id", "device_id"} & set(d)) for d in logins["ids"]]
    assert np.mean(ok) > 0.99  # the rest: an old holder's login after their phone number was handed over
    binds = resolved[resolved["event_type"] == "bind"]
    assert any({"wechat_openid", "wechat_unionid"} <= set(d) for d in binds["ids"])
    assert any({"member_id", "email"} <= set(d) for d in binds["ids"])
    multi = resolved[resolved["ids"].map(len) > 1]
    assert multi["person_key"].nunique() > 0.5 * resolved["person_key"].nunique()


def test_no_touch_without_prior_granted_consent(resolved):
    consent = resolved[resolved["event_type"] == "consent"].copy()
    consent["consent_channel"] = consent["props"].map(lambda p: p["consent_channel"])
    consent["granted"] = consent["props"].map(lambda p: p["granted"])
    assert (consent["consent_channel"] == consent["channel"]).all()
    assert set(consent["consent_channel"]) <= set(CONSENT_CHANNELS)
    assert 0.35 < consent["granted"].mean() < 0.85
    assert (~consent["granted"]).any()
    touches = resolved[resolved["event_type"] == "touch"]
    assert len(touches) > 100
    timeline = consent.sort_values("ts").groupby(["person_key", "consent_channel"])
    latest = {key: g[["ts", "granted"]].to_numpy() for key, g in timeline}
    for row in touches.itertuples():
        hist = latest.get((row.person_key, row.channel))
        assert hist is not None, f"touch {row.props} without any consent record"
        before = hist[hist[:, 0] < row.ts]
        assert len(before) and before[-1, 1], f"touch {row.props} without granted consent"


def test_touches_record_logging_propensity(world, resolved):
    touches = resolved[resolved["event_type"] == "touch"]
    props = pd.DataFrame(list(touches["props"]))
    assert props["logging_propensity"].between(0, 1, inclusive="right").all()
    merged = props.merge(world.responses, on=["touch_id", "action_id"])
    assert len(merged) == len(props) == len(world.responses)
    np.testing.assert_allclose(merged["logging_propensity_x"], merged["logging_propensity_y"])


def test_conversions_follow_true_probability(world, resolved):
    r = world.responses
    assert 0.02 < r["converted"].mean() < 0.15
    decile = pd.qcut(r["p_convert"], 10, labels=False)
    top, bottom = r.loc[decile == 9, "converted"].mean(), r.loc[decile == 0, "converted"].mean()
    assert top > 3 * bottom
    assert top > bottom + 0.1
    conv = resolved[resolved["event_type"] == "conversion"]
    assert set(conv["props"].map(lambda p: p["touch_id"])) == set(r.loc[r["converted"], "touch_id"])
    assert all(p["amount"] > 0 for p in conv["props"])


def test_churned_persons_stop_ordering(world, resolved):
    persons = world.persons.set_index("person_key")
    churned = persons["churned_at"].notna()
    assert 0.05 < churned.mean() < 0.6
    orders = resolved[resolved["event_type"] == "order"]
    churned_at = orders["person_key"].map(persons["churned_at"])
    assert not (orders["ts"] >= churned_at).any()
    assert (orders["ts"] >= orders["person_key"].map(persons["signup_at"])).all()
    assert all(p["amount"] > 0 for p in orders["props"])
    signed_late = (persons["signup_at"] > SMALL.start_ts).mean()
    assert 0.1 < signed_late < 0.4


def test_churn_truth_is_calibrated(world):
    churn = world.churn
    assert churn["p_no_order_30d"].between(0, 1).all()
    assert sorted(churn["as_of"].unique())[0] == SMALL.start_ts + pd.Timedelta(days=30)
    assert abs(churn["p_no_order_30d"].mean() - churn["no_order_30d"].mean()) < 0.03
    high = churn["p_no_order_30d"] > 0.8
    low = churn["p_no_order_30d"] < 0.3
    assert churn.loc[high, "no_order_30d"].mean() > churn.loc[low, "no_order_30d"].mean() + 0.4


def test_item_choice_follows_category_affinity(world, resolved):
    views = resolved[resolved["event_type"] == "product_view"]
    cats = views["props"].map(lambda p: p["category"])
    aff = world.persons.set_index("person_key").filter(like="affinity_")
    top = aff.idxmax(axis=1).str.removeprefix("affinity_")
    share = (cats.to_numpy() == views["person_key"].map(top).to_numpy()).mean()
    assert share > 0.3  # ten categories: 0.1 if choice ignored affinity


def test_write_world_writes_channel_files_and_truth(world, tmp_path):
    paths = write_world(world, tmp_path / "raw", tmp_path / "truth")
    files = [p for p in paths["raw"].rglob("*") if p.is_file()]
    assert {p.relative_to(paths["raw"]).parts[0] for p in files} == set(CHANNELS)
    assert {p.suffix for p in files} == {".csv", ".jsonl", ".parquet"}
    assert all(re.fullmatch(r"date=\d{4}-\d{2}-\d{2}", p.parent.name) for p in files)
    for name in ("identifiers", "persons", "churn", "responses", "items", "shared_identifiers", "traps"):
        back = pd.read_parquet(tmp_path / "truth" / f"{name}.parquet")
        assert len(back) == len(getattr(world, name)), name
    write_world(world, tmp_path / "raw", tmp_path / "truth")  # overwrite is fine
    assert len([p for p in paths["raw"].rglob("*") if p.is_file()]) == len(files)
