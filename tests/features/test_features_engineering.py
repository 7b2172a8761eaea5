"""Feature snapshots: point in time (later events change nothing) and hand-checked values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.engineering import (
    VIEW_FEATURES,
    VIEW_NAMES,
    build_feature_snapshots,
    snapshot_dates,
    write_feature_tables,
)
from features.schema import CATEGORIES, CHANNELS, CONSENT_CHANNELS, LAKE_COLUMNS

START = pd.Timestamp("2026-01-01", tz="UTC")


def day(n: float) -> pd.Timestamp:
    return START + pd.Timedelta(days=n)


def ev(person, d, channel, event_type, **props):
    row = {col: None for col in LAKE_COLUMNS}
    row.update(event_id=f"{person}-{d}-{event_type}-{channel}", ts=day(d), channel=channel,
               event_type=event_type, identifiers="{}", person_id=person, **props)
    return row


def frame(rows) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    out["amount"] = out["amount"].astype(float)
    out["granted"] = out["granted"].astype("boolean")
    return out


ROWS = [
    ev("PA", 0, "web", "page_view"),
    ev("PA", 1, "sms", "consent", consent_channel="sms", purpose="marketing", granted=True),
    ev("PA", 2, "email", "consent", consent_channel="email", purpose="marketing", granted=True),
    ev("PA", 5, "web", "product_view", item_id="i1", category="shoes"),
    ev("PA", 10, "pos", "order", order_id="o1", item_id="i1", category="shoes", amount=100.0),
    ev("PA", 40, "pos", "order", order_id="o2", item_id="i2", category="beauty", amount=50.0),
    ev("PA", 45, "sms", "touch", touch_id="t1", action_id="discount_10"),
    ev("PA", 46, "sms", "click", touch_id="t1", action_id="discount_10"),
    ev("PA", 47, "sms", "conversion", touch_id="t1", action_id="discount_10", amount=20.0),
    ev("PA", 55, "sms", "consent", consent_channel="sms", purpose="marketing", granted=False),
    ev("PA", 150, "pos", "order", order_id="o3", item_id="i1", category="shoes", amount=30.0),
    ev("PB", 100, "app", "page_view"),
]
EVENTS = frame(ROWS)


def _row(frames, view, person, as_of_day):
    f = frames[view]
    hit = f[(f["person_id"] == person) & (f["event_timestamp"] == day(as_of_day))]
    assert len(hit) == 1
    return hit.iloc[0]


def test_hand_checked_values_at_day_60():
    frames = build_feature_snapshots(EVENTS, [day(60)])
    assert set(frames) == set(VIEW_NAMES)
    assert frames["person_rfm"]["person_id"].tolist() == ["PA"]  # PB first seen on day 100
    rfm = _row(frames, "person_rfm", "PA", 60)
    assert rfm["recency_days"] == 20.0 and rfm["frequency_30d"] == 1 and rfm["frequency_90d"] == 2
    assert rfm["monetary_30d"] == 50.0 and rfm["monetary_90d"] == 150.0 and rfm["avg_order_value"] == 75.0
    assert rfm["orders_total"] == 2 and rfm["tenure_days"] == 60.0 and rfm["days_since_last_visit"] == 20.0
    assert rfm["lifecycle_stage"] == 1  # active

    eng = _row(frames, "person_channel_engagement", "PA", 60)
    assert eng["sms_events_30d"] == 4 and eng["pos_events_30d"] == 1 and eng["email_events_30d"] == 0
    assert eng["sms_clicks_90d"] == 1 and eng["sms_conversions_90d"] == 1 and eng["email_clicks_90d"] == 0
    assert eng["touches_30d"] == 1 and eng["click_rate_90d"] == 1.0

    aff = _row(frames, "person_category_affinity", "PA", 60)
    assert aff["affinity_shoes"] == pytest.approx(2 / 3) and aff["affinity_beauty"] == pytest.approx(1 / 3)
    assert aff["affinity_books"] == 0.0 and aff["top_category"] == CATEGORIES.index("shoes")

    consent = _row(frames, "person_consent", "PA", 60)
    assert consent["consent_sms"] == 0 and consent["consent_email"] == 1 and consent["consent_app"] == 0


@pytest.mark.parametrize(("person", "as_of", "stage", "recency"), [
    ("PA", 20, 0, 10.0),     # new: first seen 20 days ago (even though it ordered)
    ("PA", 60, 1, 20.0),     # active: ordered 20 days ago
    ("PA", 120, 2, 80.0),    # at risk: last order 80 days ago
    ("PA", 145, 3, 105.0),   # lapsed: last order > 90 days ago
    ("PA", 160, 4, 10.0),    # reactivated: order 10 days ago after a 110-day gap
    ("PA", 200, 2, 50.0),    # reactivation wears off
    ("PB", 120, 0, 999.0),   # new, never ordered
    ("PB", 160, 3, 999.0),   # never ordered, no longer new: lapsed
])
def test_lifecycle_and_recency(person, as_of, stage, recency):
    frames = build_feature_snapshots(EVENTS, [day(as_of)])
    rfm = _row(frames, "person_rfm", person, as_of)
    assert rfm["lifecycle_stage"] == stage and rfm["recency_days"] == recency


def test_events_after_as_of_change_nothing():
    dates = [day(30), day(60), day(90)]
    before = build_feature_snapshots(EVENTS, dates)
    later = [ev("PA", 90.5, "pos", "order", order_id="o9", category="books", amount=999.0),
             ev("PA", 91, "sms", "consent", consent_channel="sms", purpose="marketing", granted=True),
             ev("PC", 95, "web", "page_view"),
             ev("PA", 120, "email", "click", touch_id="t2", action_id="new_arrivals")]
    after = build_feature_snapshots(frame(ROWS + later), dates)
    for view in VIEW_NAMES:
        pd.testing.assert_frame_equal(before[view], after[view])
    # ... while the same event before as_of does change it
    earlier = build_feature_snapshots(frame([*ROWS, ev("PA", 89, "pos", "order", category="books",
                                                      amount=999.0)]), dates)
    assert not before["person_rfm"].equals(earlier["person_rfm"])


def test_columns_dtypes_and_unique_names(tmp_path):
    frames = build_feature_snapshots(EVENTS, snapshot_dates(day(0), day(160), every_days=30))
    names = [n for view in VIEW_NAMES for n in VIEW_FEATURES[view]]
    assert len(names) == len(set(names))
    assert len(VIEW_FEATURES["person_channel_engagement"]) == 2 * len(CHANNELS) + 6 * len(CONSENT_CHANNELS) + 16
    assert len(names) >= 60
    for view, f in frames.items():
        assert list(f.columns) == ["person_id", "event_timestamp", *VIEW_FEATURES[view]]
        assert str(f["event_timestamp"].dtype) == "datetime64[ns, UTC]"
        for name, kind in VIEW_FEATURES[view].items():
            assert f[name].dtype == (np.int64 if kind == "int" else np.float64), name
    counts = frames["person_rfm"].groupby("event_timestamp").size()
    assert counts.tolist() == [1, 1, 1, 1, 2, 2, 2]  # PB appears from day 100
    paths = write_feature_tables(frames, tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["person_consent"]), frames["person_consent"])


def test_snapshot_dates_include_end():
    dates = snapshot_dates("2026-01-01", "2026-01-20", every_days=7)
    assert dates == [pd.Timestamp(f"2026-01-{d:02d}", tz="UTC") for d in (1, 8, 15, 20)]
    assert snapshot_dates("2026-01-01", "2026-01-15")[-1] == pd.Timestamp("2026-01-15", tz="UTC")
    with pytest.raises(ValueError, match="every_days"):
        snapshot_dates("2026-01-01", "2026-01-15", every_days=0)


def test_totals_and_order_rate():
    frames = build_feature_snapshots(EVENTS, snapshot_dates(day(0), day(160), every_days=30))
    eng = frames["person_channel_engagement"]
    per_channel = eng[[f"{c}_events_30d" for c in CHANNELS]].sum(axis=1)
    assert (eng["events_30d"] == per_channel).all()
    rfm = frames["person_rfm"]
    expected = rfm["orders_total"] * 30.0 / rfm["tenure_days"].clip(lower=1.0)
    assert (rfm["orders_per_30d"] - expected).abs().max() < 1e-9


def test_new_features_hand_checked_at_day_60():
    frames = build_feature_snapshots(EVENTS, [day(60)])
    rfm = _row(frames, "person_rfm", "PA", 60)
    assert rfm["frequency_365d"] == 2 and rfm["monetary_365d"] == 150.0 and rfm["avg_days_between_orders"] == 30.0

    eng = _row(frames, "person_channel_engagement", "PA", 60)
    assert eng["visits_90d"] == 4 and eng["visits_30d"] == 1 and eng["visits_7d"] == 0
    assert eng["events_7d"] == 1 and eng["clicks_30d"] == 1 and eng["clicks_7d"] == 0
    assert eng["conversions_30d"] == 1 and eng["touches_90d"] == 1 and eng["sms_opens_90d"] == 0
    assert eng["open_rate_90d"] == 0.0 and eng["conversion_rate_90d"] == 1.0

    aff = _row(frames, "person_category_affinity", "PA", 60)
    assert aff["categories_engaged"] == 2
    assert aff["category_entropy"] == pytest.approx(-(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3)))

    consent = _row(frames, "person_consent", "PA", 60)
    assert consent["consent_sms_marketing"] == 0 and consent["consent_email_marketing"] == 1
    assert consent["consent_email_service"] == 0 and consent["consented_channels"] == 1

    beh = _row(frames, "person_behaviour", "PA", 60)
    # the one conversion came from discount_10 (10% off in config/actions.yaml) after one discounted touch
    assert beh["discount_conversion_share"] == 1.0 and beh["discount_response_rate"] == 1.0
    assert beh["full_price_response_rate"] == 0.0 and beh["avg_discount_converted"] == pytest.approx(0.10)
    assert beh["price_index"] == pytest.approx(1.0)  # PA's orders are each category's only orders
    assert beh["avg_item_price"] == 75.0 and beh["max_order_value"] == 100.0
    assert beh["basket_items_avg"] == 1.0 and beh["basket_value_90d"] == 75.0
    # active events fall on Thu, Tue, Sun, Tue, Mon, Tue (all at 00:00 UTC)
    assert beh["preferred_hour"] == 0 and beh["preferred_weekday"] == 1
    assert beh["weekend_share"] == pytest.approx(1 / 6) and beh["evening_share"] == 0.0
    assert _row(frames, "person_behaviour", "PA", 60)["preferred_weekday"] == 1


def test_clv_features_follow_the_bgnbd_model():
    from features.clv import expected_purchases, probability_alive
    from features.engineering_value import DEFAULT_VALUE_MODELS

    frames = build_feature_snapshots(EVENTS, [day(60), day(160)])
    value = _row(frames, "person_value", "PA", 60)
    # two purchase days (10, 40): x = 1, t_x = 30, T = 50 days; too few buyers to fit -> CDNOW prior
    bg = DEFAULT_VALUE_MODELS.purchases
    assert value["clv_repeat_purchases"] == 1
    assert value["clv_p_alive"] == pytest.approx(probability_alive(bg, [1], [30.0], [50.0])[0])
    expected = expected_purchases(bg, 90.0, [1], [30.0], [50.0])[0]
    assert value["clv_expected_purchases_90d"] == pytest.approx(expected)
    assert value["clv_expected_order_value"] == 75.0
    assert value["clv_expected_value_90d"] == pytest.approx(expected * 75.0)
    never = _row(frames, "person_value", "PB", 160)
    assert never["clv_p_alive"] == 0.0 and never["clv_expected_value_90d"] == 0.0


def test_clv_models_are_fitted_point_in_time_on_a_larger_population():
    rng = np.random.default_rng(7)
    rows = []
    for i in range(120):
        first = rng.uniform(0, 60)
        for k, gap in enumerate(np.cumsum(rng.exponential(25.0, size=rng.integers(1, 6)))):
            rows.append(ev(f"Q{i:03d}", round(first + gap - gap * (k == 0), 2), "web", "order",
                           order_id=f"o{i}-{k}", category="books", amount=float(rng.gamma(2.0, 30.0))))
    events = frame(rows)
    frames = build_feature_snapshots(events, [day(100), day(200)])
    value = frames["person_value"]
    assert value["clv_p_alive"].between(0.0, 1.0).all()
    assert (value["clv_expected_purchases_90d"] >= 0).all() and value["clv_expected_value_90d"].gt(0).any()
    # the day-100 models are fitted on day-100 history only: later snapshots leave its rows unchanged
    alone = build_feature_snapshots(events, [day(100)])["person_value"]
    together = value[value["event_timestamp"] == day(100)].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, together)
    assert (alone["clv_p_alive"] < 1.0).any()  # fitted models, not just first-time buyers


def _minutes(person, minutes, channel, event_type, **props):
    row = ev(person, 0, channel, event_type, **props)
    row.update(event_id=f"{person}-{minutes}-{event_type}-{channel}", ts=START + pd.Timedelta(minutes=minutes))
    return row


def test_sessions_and_channel_responses_hand_checked():
    day_ = 24 * 60
    rows = [
        _minutes("PS", 0, "web", "page_view"), _minutes("PS", 10, "web", "product_view", item_id="i1",
                                                        category="shoes"),
        _minutes("PS", 35, "web", "page_view"),                 # 25 min after the last event: same session
        _minutes("PS", 70, "app", "page_view"),                 # 35 min gap: a new session, on the app
        _minutes("PS", 20 * day_, "app", "login"),              # a third session, 20 days in
        _minutes("PS", 20 * day_ + 5, "app", "order", order_id="o1", item_id="i1", category="shoes",
                 amount=10.0),
        _minutes("PS", 21 * day_, "sms", "touch", touch_id="t1", action_id="discount_10"),
        _minutes("PS", 22 * day_, "sms", "touch", touch_id="t2", action_id="discount_10"),
        _minutes("PS", 22 * day_ + 60, "sms", "open", touch_id="t2", action_id="discount_10"),
    ]
    frames = build_feature_snapshots(frame(rows), [day(30)])
    rfm = _row(frames, "person_rfm", "PS", 30)
    assert rfm["sessions_total"] == 3 and rfm["sessions_14d"] == 1 and rfm["sessions_7d"] == 0
    # windows hold what happened less than d days ago: the first session, exactly 30 days back, is the past's
    assert rfm["sessions_30d"] == 2 and rfm["sessions_prev_30d"] == 1
    assert rfm["days_since_last_session"] == pytest.approx(10.0)
    assert rfm["sessions_per_30d"] == pytest.approx(3.0)          # 3 sessions over a 30-day tenure
    assert rfm["missed_sessions"] == pytest.approx(3 / 30 * 10.0)  # 10 silent days at 0.1 sessions a day
    assert rfm["days_since_last_response"] == pytest.approx(30 - 22 - 1 / 24)
    assert rfm["days_since_last_activity"] == pytest.approx(rfm["days_since_last_response"])
    eng = _row(frames, "person_channel_engagement", "PS", 30)
    assert eng["web_session_share"] == pytest.approx(1 / 3) and eng["app_session_share"] == pytest.approx(2 / 3)
    assert eng["sms_touches_total"] == 2 and eng["email_touches_total"] == 0
    assert eng["sms_open_rate_smoothed"] == pytest.approx((1 + 1) / (2 + 2))
    assert eng["sms_click_rate_smoothed"] == pytest.approx(1 / 4)
    assert eng["email_open_rate_smoothed"] == 0.5                  # no touches: the prior's middle


def test_activity_features_rank_a_silent_visitor_below_a_regular_one():
    rng = np.random.default_rng(3)
    rows = []
    for i in range(60):
        stop = 100.0 if i % 2 else 40.0       # odd persons keep visiting, even ones stop on day 40
        for k, t in enumerate(np.sort(rng.uniform(0, stop, rng.poisson(0.3 * stop)))):
            rows.append(ev(f"Q{i:02d}", round(float(t), 3), "web", "page_view"))
            if k % 4 == 0:
                rows.append(ev(f"Q{i:02d}", round(float(t), 3) + 0.001, "web", "order", order_id=f"o{i}-{k}",
                               category="books", amount=20.0))
    frames = build_feature_snapshots(frame(rows), [day(100)])
    value = frames["person_value"].set_index("person_id")
    regular = value.index.str[1:].astype(int) % 2 == 1
    assert value["activity_p_active"].between(0, 1).all() and value["activity_p_no_order_30d"].between(0, 1).all()
    assert value.loc[regular, "activity_p_active"].min() > value.loc[~regular, "activity_p_active"].max()
    assert value.loc[regular, "activity_p_no_order_30d"].mean() < value.loc[~regular, "activity_p_no_order_30d"].mean()
    assert (value["activity_expected_orders_30d"] >= 0).all() and (value["activity_session_rate_30d"] > 0).all()
