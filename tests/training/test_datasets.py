import pandas as pd
import pytest

from config.settings import ACTIONS_FILE
from features.schema import LAKE_COLUMNS
from training.datasets import (
    ActionEconomics,
    bandit_log,
    churn_labels,
    feature_columns,
    interactions,
    load_action_economics,
    touch_outcomes,
)

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def _events(rows):
    frame = pd.DataFrame(rows)
    for column in (*LAKE_COLUMNS, "person_id"):
        if column not in frame.columns:
            frame[column] = None
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def _day(n, hours=0):
    return T0 + pd.Timedelta(days=n, hours=hours)


def test_churn_labels_by_hand():
    events = _events([
        {"ts": _day(0), "event_type": "order", "person_id": "A"},   # buys again on day 20 -> not churned
        {"ts": _day(20), "event_type": "order", "person_id": "A"},
        {"ts": _day(1), "event_type": "order", "person_id": "B"},   # never again -> churned
        {"ts": _day(5), "event_type": "product_view", "person_id": "C"},  # never ordered -> not a row
        {"ts": _day(9), "event_type": "order", "person_id": "D"},   # first order after T -> not a row
        {"ts": _day(70), "event_type": "page_view", "person_id": "C"},  # sets the data end
    ])
    labels = churn_labels(events, [_day(7), _day(40)])
    first = labels[labels.event_timestamp == _day(7)].set_index("person_id")["label"].to_dict()
    assert first == {"A": 0, "B": 1}
    second = labels[labels.event_timestamp == _day(40)].set_index("person_id")["label"].to_dict()
    assert second == {"A": 1, "B": 1, "D": 1}
    assert churn_labels(events, [_day(50)]).empty  # 50 + 30 > 70: label unknown yet
    assert str(labels["event_timestamp"].dtype) == "datetime64[ns, UTC]"


def test_touch_outcomes_window_and_touch_id():
    events = _events([
        {"ts": _day(0), "event_type": "touch", "person_id": "A", "channel": "sms", "touch_id": "t1",
         "action_id": "discount_10"},
        {"ts": _day(3), "event_type": "conversion", "person_id": "A", "channel": "sms", "touch_id": "t1",
         "action_id": "discount_10", "amount": 40.0},
        {"ts": _day(1), "event_type": "touch", "person_id": "B", "channel": "email", "touch_id": "t2",
         "action_id": "new_arrivals"},
        {"ts": _day(9), "event_type": "conversion", "person_id": "B", "channel": "email", "touch_id": "t2",
         "action_id": "new_arrivals"},  # too late
        {"ts": _day(2), "event_type": "touch", "person_id": "C", "channel": "app", "touch_id": "t3",
         "action_id": "unknown_action"},
    ])
    out = touch_outcomes(events).set_index("touch_id")
    assert out["label"].to_dict() == {"t1": 1, "t2": 0, "t3": 0}
    assert out.loc["t2", "channel"] == "email" and out.loc["t1", "action_id"] == "discount_10"
    log = bandit_log(events, {"discount_10": ActionEconomics(25, 3), "new_arrivals": ActionEconomics(12, 0.5)})
    assert log["reward"].tolist() == [22.0, -0.5]
    assert log.attrs["unknown"] == 1
    assert list(log.columns[:2]) == ["ts", "channel"]


def test_interactions_keep_item_events_only():
    events = _events([
        {"ts": _day(1), "event_type": "product_view", "person_id": "A", "item_id": "I1"},
        {"ts": _day(0), "event_type": "order", "person_id": "A", "item_id": "I2"},
        {"ts": _day(0), "event_type": "page_view", "person_id": "A"},
        {"ts": _day(2), "event_type": "add_to_cart", "person_id": None, "item_id": "I3"},  # unresolved
    ])
    out = interactions(events)
    assert out[["person_id", "item_id"]].values.tolist() == [["A", "I2"], ["A", "I1"]]


def test_action_catalog_economics():
    economics = load_action_economics(ACTIONS_FILE)
    assert economics["winback_call"] == ActionEconomics(60.0, 8.0)
    assert len(economics) == 10


def test_feature_columns_skip_keys_and_labels():
    frame = pd.DataFrame(columns=["person_id", "event_timestamp", "label", "touch_id", "action_id", "recency_days"])
    assert feature_columns(frame) == ["action_id", "recency_days"]


def test_synthetic_lake_gives_both_labels(events):
    dates = pd.date_range(events.ts.min(), events.ts.max(), freq="7D")
    labels = churn_labels(events, dates)
    assert 0.05 < labels["label"].mean() < 0.95
    outcomes = touch_outcomes(events)
    assert len(outcomes) == (events.event_type == "touch").sum()
    assert outcomes["label"].sum() == pytest.approx((events.event_type == "conversion").sum(), abs=5)
