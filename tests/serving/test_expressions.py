"""Safe expressions: what they accept, what they refuse, and scalar/column agreement."""

import numpy as np
import pytest

from serving.expressions import ExpressionError, compile_expression

NAMES = {"churn_score", "recency_days", "orders_total", "lifecycle_stage"}


@pytest.mark.parametrize("text, values, expected", [
    ("churn_score > 0.5 and recency_days > 30", {"churn_score": 0.6, "recency_days": 31}, True),
    ("churn_score > 0.5 and recency_days > 30", {"churn_score": 0.6, "recency_days": 3}, False),
    ("churn_score > 0.5 or recency_days > 30", {"churn_score": 0.1, "recency_days": 31}, True),
    ("not orders_total >= 1", {"orders_total": 0}, True),
    ("0 < recency_days <= 30", {"recency_days": 30}, True),
    ("0 < recency_days <= 30", {"recency_days": 31}, False),
    ("lifecycle_stage in [2, 3]", {"lifecycle_stage": 3}, True),
    ("lifecycle_stage not in (2, 3)", {"lifecycle_stage": 3}, False),
    ("orders_total * 2 - 1 >= 5 and -recency_days < 0", {"orders_total": 3, "recency_days": 1}, True),
    ("recency_days / orders_total > 1", {"recency_days": 1, "orders_total": 0}, False),  # 1/0: not satisfied
    ("churn_score > 0.5", {"churn_score": None}, False),          # missing never matches
    ("not churn_score > 0.5", {"churn_score": float("nan")}, False),  # ... not even negated
    ("churn_score > 0.5", {}, False),
    ("churn_score > 0.5", None, False),                           # unknown person
    ("10 ** 10 ** 10 > 1", {}, False),                            # huge power refused at runtime
])
def test_evaluation(text, values, expected):
    assert compile_expression(text).evaluate(values) is expected


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('true')", "Call is not allowed"),
    ("open('/etc/passwd')", "Call is not allowed"),
    ("churn_score.real > 0", "Attribute is not allowed"),
    ("().__class__", "Attribute is not allowed"),
    ("__builtins__ > 0", "no private or dunder names"),
    ("_secret > 0", "no private or dunder names"),
    ("orders_total[0] > 1", "Subscript is not allowed"),
    ("(lambda: 1) > 0", "Lambda is not allowed"),
    ("[x for x in orders_total]", "ListComp is not allowed"),
    ("churn_score if churn_score else 0", "IfExp is not allowed"),
    ("(x := 1)", "NamedExpr is not allowed"),
    ("orders_total in churn_score", "'in' needs a literal list"),
    ("orders_total in [churn_score]", "only numeric, string or boolean literals"),
    ("churn_score >", "invalid syntax"),
    ("", "non-empty string"),
    ("churn_score > 0 and bogus_feature < 1", r"unknown names \['bogus_feature'\]"),
])
def test_unsafe_or_invalid_expressions_are_rejected(text, message):
    with pytest.raises(ExpressionError, match=message):
        compile_expression(text, NAMES)


def test_names_are_collected():
    assert compile_expression("churn_score > 0.5 and recency_days > 30").names == {"churn_score", "recency_days"}


@pytest.mark.parametrize("text", [
    "churn_score > 0.5 and recency_days > 30",
    "not (churn_score > 0.2) or recency_days * 2 < 40",
    "lifecycle_stage in [1, 2] and 0 < churn_score < 0.9",
    "orders_total - 1 >= 0 and not lifecycle_stage not in [0]",
])
def test_column_evaluation_matches_row_by_row(text):
    rng = np.random.default_rng(3)
    n = 500
    columns = {
        "churn_score": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        "recency_days": rng.exponential(30, n),
        "orders_total": rng.poisson(2, n).astype(float),
        "lifecycle_stage": rng.integers(0, 4, n).astype(float),
    }
    rule = compile_expression(text)
    vector = rule.evaluate_columns(columns, n)
    scalar = [rule.evaluate({k: float(v[i]) for k, v in columns.items()}) for i in range(n)]
    assert vector.tolist() == scalar
    assert 0 < vector.sum() < n
