import pandas as pd
import pytest

from training.splits import interaction_split, time_split


def _frame(n=20):
    return pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=n, freq="D", tz="UTC"), "x": range(n)})


def test_time_split_orders_train_before_test_with_gap():
    split = time_split(_frame(), ts_col="ts", test_fraction=0.25, gap=pd.Timedelta(days=3))
    assert split.train["ts"].max() < split.cutoff - pd.Timedelta(days=3)
    assert split.test["ts"].min() == split.cutoff
    assert len(split.test) == 5 and len(split.train) == 12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ts_col": "ts", "test_fraction": 0}, "test_fraction"),
        ({"ts_col": "nope"}, "nope"),
        ({"ts_col": "ts", "gap": pd.Timedelta(days=30)}, "gap"),
    ],
)
def test_time_split_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        time_split(_frame(), **kwargs)


def test_interaction_split_holds_out_new_items_of_known_persons():
    ts = pd.date_range("2026-01-01", periods=6, freq="D", tz="UTC")
    frame = pd.DataFrame({
        "person_id": ["A", "A", "B", "A", "A", "C"],
        "item_id": ["i1", "i2", "i1", "i1", "i3", "i9"],
        "ts": ts,
    })
    train, relevant, cutoff = interaction_split(frame, test_fraction=0.5)
    assert train["ts"].max() < cutoff
    assert relevant == {"A": {"i3"}}  # i1 already seen; C unknown before the cutoff
