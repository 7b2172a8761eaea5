"""The activity model (features.activity): likelihood, fit and posterior on data drawn from the model itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.activity import (
    LAST_SESSIONS,
    ActivityHistory,
    ActivityParams,
    _grid,
    _log_likelihood,
    activity_posterior,
    fit_activity,
)

TRUE = ActivityParams(r=2.0, alpha=70.0, q=3.0, gamma=12.0, s=1.5, beta=300.0, leak=0.05,
                      load_order=0.5, load_session=0.4, load_dropout=-0.6)


def draw(params: ActivityParams, n: int, seed: int, horizon: float = 30.0):
    """Histories drawn from the model, with the truth: active at as_of, and no order within the horizon."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=n)
    lam = rng.gamma(params.r, 1.0 / (params.alpha * np.exp(-params.load_order * g)))
    nu = rng.gamma(params.q, 1.0 / (params.gamma * np.exp(-params.load_session * g)))
    mu = rng.gamma(params.s, 1.0 / (params.beta * np.exp(-params.load_dropout * g)))
    exposure = rng.uniform(20.0, 150.0, n)
    lapse = rng.exponential(1.0 / mu)
    width = LAST_SESSIONS + 1
    orders, last_order, sessions = np.zeros(n), np.zeros(n), np.zeros(n)
    recent = np.full((n, width), np.nan)
    none_next = np.zeros(n, dtype=bool)
    for i in range(n):
        end = min(lapse[i], exposure[i])
        o = np.sort(rng.uniform(0.0, end, rng.poisson(lam[i] * end)))
        s = np.concatenate([rng.uniform(0.0, end, rng.poisson(nu[i] * end)),
                            rng.uniform(end, exposure[i], rng.poisson(params.leak * nu[i] * (exposure[i] - end)))])
        s = np.sort(s)
        orders[i], last_order[i], sessions[i] = len(o), (o[-1] if len(o) else 0.0), len(s)
        recent[i, width - len(s[-width:]):] = s[-width:]
        ahead = max(min(lapse[i], exposure[i] + horizon) - exposure[i], 0.0)
        none_next[i] = rng.poisson(lam[i] * ahead) == 0
    history = ActivityHistory(exposure, orders, last_order, sessions, recent)
    return history, lapse > exposure, none_next, g


@pytest.fixture(scope="module")
def drawn():
    return draw(TRUE, 1500, seed=11)


def test_gradient_matches_finite_differences(drawn):
    history = drawn[0].take(np.arange(300))
    grid = _grid(history)
    start = ActivityParams(1.3, 40.0, 1.7, 9.0, 1.0, 200.0, 0.08, 0.3, 0.2, -0.4)
    v = start._vector()
    _, grad = _log_likelihood(start, history, grid, gradient=True)

    def mean_ll(w):
        return np.mean(_log_likelihood(ActivityParams._from_vector(w), history, grid)[0])

    step = 1e-6
    numeric = [(mean_ll(v + step * e) - mean_ll(v - step * e)) / (2 * step) for e in np.eye(len(v))]
    np.testing.assert_allclose(grad.mean(axis=0), numeric, rtol=1e-4, atol=1e-7)


def test_fit_recovers_the_population_and_the_posterior_ranks_like_the_truth(drawn):
    history, active, none_next, g = drawn
    fitted = fit_activity(history)
    mean = {name: getattr(fitted, shape) / getattr(fitted, scale)
            for name, shape, scale in (("order", "r", "alpha"), ("session", "q", "gamma"))}
    assert mean["order"] == pytest.approx(TRUE.r / TRUE.alpha, rel=0.2)
    assert mean["session"] == pytest.approx(TRUE.q / TRUE.gamma, rel=0.15)
    assert fitted.leak == pytest.approx(TRUE.leak, abs=0.03)
    assert fitted.load_order > 0.2 and fitted.load_session > 0.2 and fitted.load_dropout < 0
    post = activity_posterior(history, fitted)
    assert roc_auc_score(active, post.p_active) > 0.9
    assert post.p_no_order.mean() == pytest.approx(none_next.mean(), abs=0.05)
    assert np.corrcoef(post.level, g)[0, 1] > 0.6
    # under the true population the posterior is as good as it gets; the fitted one comes close
    best = activity_posterior(history, TRUE)
    assert roc_auc_score(none_next, post.p_no_order) > roc_auc_score(none_next, best.p_no_order) - 0.01


def test_posterior_reads_silence_and_is_chunk_invariant(drawn):
    history = drawn[0].take(np.arange(50))
    whole = activity_posterior(history, TRUE)
    pieces = activity_posterior(history, TRUE, chunk=7)
    for field in ("p_active", "p_no_order", "expected_orders", "order_rate", "session_rate", "level"):
        np.testing.assert_allclose(getattr(whole, field), getattr(pieces, field), rtol=1e-12)
    # the same regular visitor, seen yesterday or silent for 60 days
    recent = np.array([[80.0, 85.0, 90.0, 99.0], [20.0, 25.0, 30.0, 40.0]])
    two = ActivityHistory(np.array([100.0, 100.0]), np.array([3.0, 3.0]), np.array([60.0, 35.0]),
                          np.array([30.0, 30.0]), recent)
    post = activity_posterior(two, TRUE)
    assert post.p_active[0] > 0.95 and post.p_active[1] < 0.2
    assert post.p_no_order[1] > post.p_no_order[0] and post.expected_orders[1] < post.expected_orders[0]
    assert ((post.p_no_order >= 0) & (post.p_no_order <= 1)).all()


@pytest.mark.parametrize(("change", "message"), [
    ({"r": 0.0}, "r must be"), ({"beta": np.inf}, "beta must be"), ({"leak": 1.0}, "leak"),
    ({"load_order": np.nan}, "load_order"),
])
def test_invalid_parameters(change, message):
    values = {**TRUE.__dict__, **change}
    with pytest.raises(ValueError, match=message):
        ActivityParams(**values)
    with pytest.raises(ValueError, match="at least one"):
        fit_activity(ActivityHistory(*(np.zeros(0) for _ in range(4)), np.zeros((0, LAST_SESSIONS + 1))))


def test_value_models_keep_the_activity_fit(tmp_path):
    from features.engineering_value import (
        DEFAULT_VALUE_MODELS,
        ValueModels,
        read_value_models,
        write_value_models,
    )

    models = ValueModels(DEFAULT_VALUE_MODELS.purchases, None, 12.5, TRUE)
    write_value_models(models, tmp_path)
    assert read_value_models(tmp_path) == models
    # a file written before the activity model existed still reads
    legacy = ValueModels(DEFAULT_VALUE_MODELS.purchases, None, 12.5)
    write_value_models(legacy, tmp_path)
    assert read_value_models(tmp_path).activity is None


def test_history_from_events_keeps_the_last_sessions():
    from features.engineering import catalog_discounts
    from features.engineering_activity import activity_history
    from features.engineering_base import prepare_events
    from features.schema import LAKE_COLUMNS

    start = pd.Timestamp("2026-01-01", tz="UTC")
    rows = []
    for i, (d, kind) in enumerate([(0, "consent"), (1, "page_view"), (3, "page_view"), (5, "order"),
                                   (6, "page_view"), (8, "page_view"), (9, "page_view"), (9.01, "product_view"),
                                   (12, "page_view")]):
        row = {c: None for c in LAKE_COLUMNS}
        row.update(event_id=f"e{i}", ts=start + pd.Timedelta(days=d), channel="web", event_type=kind,
                   identifiers="{}", person_id="P", order_id="o1" if kind == "order" else None)
        rows.append(row)
    events = pd.DataFrame(rows)
    events["amount"] = events["amount"].astype(float)
    events["granted"] = events["granted"].astype("boolean")
    ev = prepare_events(events, catalog_discounts())
    as_of = int((start + pd.Timedelta(days=10)).value)
    h = activity_history(ev, as_of, ev.ts <= as_of)
    assert h.exposure[0] == pytest.approx(10.0) and h.orders[0] == 1 and h.last_order[0] == pytest.approx(5.0)
    # sessions on days 1, 3, 6, 8, 9 (the product view 15 minutes later is the same session); 12 is the future
    assert h.sessions[0] == 5
    np.testing.assert_allclose(h.recent[0], [3.0, 6.0, 8.0, 9.0][-(LAST_SESSIONS + 1):])
    assert ev.session_start.sum() == 6
