"""Customer lifetime value features: BG/NBD + Gamma-Gamma (features.clv) on each person's purchase days,
and the activity model (features.activity) on orders and browsing sessions.

Per snapshot the models are fitted on the purchase history up to ``as_of`` only (point in time), in days;
a snapshot warm-starts from the previous one. A person's summary: ``x`` = purchase days after the first,
``t_x`` = days from first to last purchase day, ``T`` = days from the first purchase day to ``as_of``.
Persons who never ordered have nothing to extrapolate and get zeros. With too few buyers to fit (a tiny
world) the CDNOW parameters of Fader, Hardie & Lee (2005), rescaled from weeks to days, stand in, and the
order value falls back to the person's own mean (or the population mean).

The activity model is fitted on every person seen by ``as_of`` (orders and sessions since they were first
seen) and gives ``activity_p_active`` (still active), ``activity_p_no_order_30d`` (what churn is),
``activity_expected_orders_30d``, the posterior order and session rates (per 30 days) and
``activity_level`` (the common level behind all three rates: how engaged the person is).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.activity import (
    ActivityHistory,
    ActivityParams,
    activity_posterior,
    fit_activity,
    initial_params,
)
from features.clv import (
    BetaGeoParams,
    GammaGammaParams,
    expected_average_value,
    expected_purchases,
    fit_beta_geo,
    fit_gamma_gamma,
    probability_alive,
)
from features.engineering_activity import activity_history
from features.engineering_base import DAY_NS, CodedEvents, count

__all__ = [
    "CLV_HORIZON_DAYS", "DEFAULT_VALUE_MODELS", "VALUE_FEATURES", "ValueModels", "fit_value_models",
    "read_value_models", "value_features", "write_value_models",
]

CLV_HORIZON_DAYS = 90.0
ACTIVITY_HORIZON_DAYS = 30.0
MIN_BUYERS_TO_FIT = 30
VALUE_MODELS_FILE = "value_models.json"
VALUE_FEATURES: dict[str, str] = {
    "clv_repeat_purchases": "int", "clv_p_alive": "float", "clv_expected_purchases_90d": "float",
    "clv_expected_order_value": "float", "clv_expected_value_90d": "float",
    "activity_p_active": "float", "activity_p_no_order_30d": "float", "activity_expected_orders_30d": "float",
    "activity_order_rate_30d": "float", "activity_session_rate_30d": "float", "activity_level": "float",
}

# feature -> (ActivityPosterior field, scale): rates are per day in the model, per 30 days as features
_ACTIVITY_COLUMNS: dict[str, tuple[str, float]] = {
    "activity_p_active": ("p_active", 1.0), "activity_p_no_order_30d": ("p_no_order", 1.0),
    "activity_expected_orders_30d": ("expected_orders", 1.0), "activity_order_rate_30d": ("order_rate", 30.0),
    "activity_session_rate_30d": ("session_rate", 30.0), "activity_level": ("level", 1.0),
}


@dataclass(frozen=True)
class ValueModels:
    """Fitted purchase (BG/NBD, time unit days), spend (Gamma-Gamma, or None) and activity (sessions and
    orders, features.activity; None until fitted) models of one snapshot."""

    purchases: BetaGeoParams
    spend: GammaGammaParams | None
    mean_order_value: float
    activity: ActivityParams | None = None


DEFAULT_VALUE_MODELS = ValueModels(BetaGeoParams(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426), None, 0.0)


@dataclass(frozen=True)
class _Summary:
    buyer: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    big_t: np.ndarray
    repeat_value: np.ndarray
    own_mean: np.ndarray


def _summary(ev: CodedEvents, as_of: int, upto: np.ndarray) -> _Summary:
    n = ev.n_persons
    orders = upto & ev.is_order
    days = count(ev.code[orders & ev.first_order_of_day], n)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    np.minimum.at(first, ev.code[orders], ev.day[orders])
    np.maximum.at(last, ev.code[orders], ev.day[orders])
    buyer = days > 0
    spend = count(ev.code[orders], n, ev.amount[orders])
    on_first = orders.copy()
    on_first[orders] = ev.day[orders] == first[ev.code[orders]]
    first_spend = count(ev.code[on_first], n, ev.amount[on_first])
    x = np.where(buyer, days - 1, 0).astype(float)
    t_x = np.where(buyer, last - first, 0).astype(float)
    big_t = np.where(buyer, np.maximum(as_of / DAY_NS - first, t_x), 0.0)
    lines = count(ev.code[orders], n)
    return _Summary(buyer=buyer, x=x, t_x=t_x, big_t=big_t,
                    repeat_value=np.divide(spend - first_spend, x, out=np.zeros(n), where=x > 0),
                    own_mean=np.divide(spend, lines, out=np.zeros(n), where=lines > 0))


def _fit(s: _Summary, history: ActivityHistory, previous: ValueModels | None) -> ValueModels:
    buyers = s.buyer
    mean_value = float(s.own_mean[buyers].mean()) if buyers.any() else 0.0
    activity = _fit_activity(history, previous)
    if buyers.sum() < MIN_BUYERS_TO_FIT:
        return ValueModels(DEFAULT_VALUE_MODELS.purchases, None, mean_value, activity)
    # identical (x, t_x, T) rows are one likelihood term with a weight: a few thousand terms at any scale
    keys = pd.DataFrame({"x": s.x[buyers], "t_x": s.t_x[buyers], "T": np.round(s.big_t[buyers], 2)})
    terms = keys.groupby(["x", "t_x", "T"], sort=False).size().reset_index(name="weight")
    try:
        bg = fit_beta_geo(terms["x"], terms["t_x"], terms["T"], weights=terms["weight"], polish=False,
                          initial=previous.purchases if previous else None)
    except ValueError:
        bg = previous.purchases if previous else DEFAULT_VALUE_MODELS.purchases
    spend = None
    if (s.x > 0).sum() >= MIN_BUYERS_TO_FIT:
        try:
            spend = fit_gamma_gamma(s.x[s.x > 0], s.repeat_value[s.x > 0],
                                    initial=previous.spend if previous else None)
        except ValueError:
            spend = None
        if spend is not None and spend.q <= 1:
            spend = None  # infinite population mean: fall back to observed means
    return ValueModels(bg, spend, mean_value, activity)


def _fit_activity(history: ActivityHistory, previous: ValueModels | None) -> ActivityParams:
    """The activity model's population fit on the persons seen so far, warm-started from the last fit; with
    too few persons, the pooled rates of these persons (never an earlier snapshot's: a snapshot's figures
    must not depend on which snapshots were built before it)."""
    earlier = previous.activity if previous else None
    if len(history) < MIN_BUYERS_TO_FIT:
        return initial_params(history)
    try:
        return fit_activity(history, earlier)
    except ValueError:
        return earlier or initial_params(history)


def _seen_history(ev: CodedEvents, as_of: int, upto: np.ndarray) -> tuple[np.ndarray, ActivityHistory]:
    seen = np.flatnonzero(ev.first_ts <= as_of)
    return seen, activity_history(ev, as_of, upto).take(seen)


def fit_value_models(ev: CodedEvents, as_of: int, previous: ValueModels | None = None) -> ValueModels:
    """BG/NBD, Gamma-Gamma and the activity model fitted on events with ``ts <= as_of`` (ns)."""
    upto = ev.ts <= as_of
    return _fit(_summary(ev, as_of, upto), _seen_history(ev, as_of, upto)[1], previous)


def value_features(ev: CodedEvents, as_of: int, upto: np.ndarray, models: ValueModels | None = None,
                   previous: ValueModels | None = None) -> tuple[dict[str, np.ndarray], ValueModels]:
    """Columns of :data:`VALUE_FEATURES` and the models used (fitted here unless ``models`` is given)."""
    s = _summary(ev, as_of, upto)
    seen, history = _seen_history(ev, as_of, upto)
    models = models or _fit(s, history, previous)
    n = ev.n_persons
    alive, purchases, value = np.zeros(n), np.zeros(n), np.zeros(n)
    b = s.buyer
    if b.any():
        alive[b] = probability_alive(models.purchases, s.x[b], s.t_x[b], s.big_t[b])
        purchases[b] = expected_purchases(models.purchases, CLV_HORIZON_DAYS, s.x[b], s.t_x[b], s.big_t[b])
        if models.spend is not None:
            value[b] = expected_average_value(models.spend, s.x[b], s.repeat_value[b])
        else:
            value[b] = np.where(s.own_mean[b] > 0, s.own_mean[b], models.mean_order_value)
    activity = {name: np.zeros(n) for name in _ACTIVITY_COLUMNS}
    if len(seen):
        posterior = activity_posterior(history, models.activity or initial_params(history), ACTIVITY_HORIZON_DAYS)
        for name, (field, scale) in _ACTIVITY_COLUMNS.items():
            activity[name][seen] = getattr(posterior, field) * scale
    return {
        "clv_repeat_purchases": s.x.astype(np.int64),
        "clv_p_alive": alive,
        "clv_expected_purchases_90d": purchases,
        "clv_expected_order_value": value,
        "clv_expected_value_90d": purchases * value,
        **activity,
    }, models


def write_value_models(models: ValueModels, features_dir: Path) -> Path:
    """Keep the latest snapshot's fitted models so real-time updates score new events the same way."""
    path = Path(features_dir) / VALUE_MODELS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(models), indent=2))
    return path


def read_value_models(features_dir: Path) -> ValueModels | None:
    """The models written by :func:`write_value_models`, or None when there are none."""
    path = Path(features_dir) / VALUE_MODELS_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    spend = GammaGammaParams(**raw["spend"]) if raw.get("spend") else None
    activity = raw.get("activity")
    activity = ActivityParams(**activity) if activity else None
    return ValueModels(BetaGeoParams(**raw["purchases"]), spend, float(raw["mean_order_value"]), activity)
