"""Leave-last-out split and ranking metrics (pure)."""

import pandas as pd
import pytest

from training.recommender import leave_last_out, ranking_metrics


class _Fixed:
    """A recommender that always returns the same list (seen items are the caller's business)."""

    def __init__(self, items):
        self.items = items

    def recommend(self, person, k):
        return [(i, 1.0) for i in self.items[:k]]


def test_leave_last_out_holds_out_the_latest_first_time_item():
    frame = pd.DataFrame({
        "person_id": ["a", "a", "a", "a", "b", "b", "c"],
        "item_id": ["x", "y", "x", "z", "x", "x", "q"],
        "ts": [1, 2, 3, 2, 1, 2, 1],
    })
    split = leave_last_out(frame)
    # a: x@1, y@2, z@2 (input order breaks the tie: z comes later), the repeat x@3 is dropped
    assert split.held_out == {"a": {"z"}}
    assert sorted(map(tuple, split.train[["person_id", "item_id"]].to_numpy())) == [
        ("a", "x"), ("a", "y"), ("b", "x"), ("c", "q")]


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pd.DataFrame({"person_id": ["a"], "item_id": ["x"]}), {}, "ts"),
        (pd.DataFrame({"person_id": ["a"], "item_id": ["x"], "ts": [1]}), {"min_items": 1}, "min_items"),
    ],
)
def test_leave_last_out_rejects_bad_input(frame, kwargs, message):
    with pytest.raises(ValueError, match=message):
        leave_last_out(frame, **kwargs)


def test_ranking_metrics_by_hand():
    model = _Fixed(["a", "b", "c"])
    relevant = {"p": {"b"}, "q": {"z"}, "r": {"a", "c"}}
    out = ranking_metrics(model, relevant, k=3)
    import math
    ndcg_p = (1 / math.log2(3)) / 1.0
    ndcg_r = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert out["recall"] == pytest.approx((1 + 0 + 1) / 3)
    assert out["ndcg"] == pytest.approx((ndcg_p + 0 + ndcg_r) / 3)
    assert ranking_metrics(model, {}, 3) == {"recall": 0.0, "ndcg": 0.0}
    with pytest.raises(ValueError, match="k"):
        ranking_metrics(model, relevant, 0)
