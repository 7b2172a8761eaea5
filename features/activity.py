"""Is a customer still active, and how likely is an order soon? A Pareto/NBD on orders and sessions with a
common activity level.

Model
-----
Each person has an activity level g ~ N(0, 1) and, given g, an order rate λ ~ Gamma(r, α·e^(-a_λ·g)), a
browsing-session rate ν ~ Gamma(q, γ·e^(-a_ν·g)) and a drop-out rate μ ~ Gamma(s, β·e^(-a_μ·g)) (per day;
a loading a > 0 means the rate rises with g). From the moment they are first seen they stay active until
τ ~ Exp(μ); while active, orders and sessions arrive as Poisson processes at λ and ν; afterwards orders
stop and sessions go on at ε·ν (lapsed customers still drift in now and then; ε is one population number).

With one stream, no g and ε = 0 this is the Pareto/NBD of Schmittlein, Morrison & Colombo (1987). Sessions
are a second stream because they are several times more frequent than orders: a silence in sessions says
much earlier than a silence in orders that a customer has gone. The common level g plays the part of the
correlated heterogeneity of Abe (2009, Marketing Science 28(3)): frequent visitors buy more and lapse less
when the data say so, and a person's many sessions then sharpen what their few orders say.

Likelihood
----------
Given g and τ = x days after first seen, λ and ν integrate out in closed form (negative-binomial terms).
The x-integral is taken by Gauss-Legendre over the gaps between the breakpoints (the last order, the
sessions after it, as_of; k sessions after x cost ε^k, so lapse times before the last ``LAST_SESSIONS``
sessions are left out) and g by Gauss-Hermite. The population parameters are fitted by maximum
likelihood (L-BFGS with the analytic gradient, warm-started from the previous snapshot's fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

__all__ = [
    "ActivityHistory",
    "ActivityParams",
    "ActivityPosterior",
    "activity_posterior",
    "fit_activity",
    "initial_params",
]

LAST_SESSIONS = 3      # sessions after the last order that a lapse time may precede
FIT_PERSONS = 1000     # persons the population fit uses (a seeded subsample beyond that)
WARM_STEPS = 20      # L-BFGS steps from the previous snapshot's fit (parameters move little in a week)
SEED = 1987
_X_NODES, _X_WEIGHTS = np.polynomial.legendre.leggauss(6)
_X_NODES, _X_WEIGHTS = (_X_NODES + 1.0) / 2.0, _X_WEIGHTS / 2.0      # on [0, 1]
_H_NODES, _H_WEIGHTS = np.polynomial.legendre.leggauss(12)
_H_NODES, _H_WEIGHTS = (_H_NODES + 1.0) / 2.0, _H_WEIGHTS / 2.0      # the horizon, on [0, 1]
_G_NODES, _G_WEIGHTS = np.polynomial.hermite_e.hermegauss(7)
_G_LOG_WEIGHTS = np.log(_G_WEIGHTS / np.sqrt(2.0 * np.pi))          # N(0, 1)
_POSITIVE = ("r", "alpha", "q", "gamma", "s", "beta")
_LOADINGS = ("load_order", "load_session", "load_dropout")


@dataclass(frozen=True)
class ActivityParams:
    """Population parameters: Gamma shapes and scales of the order (r, alpha), session (q, gamma) and drop-out
    (s, beta) rates per day at the mean activity level, the post-drop-out session share ``leak``, and the
    loadings of the three log rates on the activity level."""

    r: float
    alpha: float
    q: float
    gamma: float
    s: float
    beta: float
    leak: float
    load_order: float = 0.0
    load_session: float = 0.0
    load_dropout: float = 0.0

    def __post_init__(self):
        for name in _POSITIVE:
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"activity parameter {name} must be a positive finite number, got {value}")
        if not 0 < self.leak < 1:
            raise ValueError(f"activity parameter leak must be in (0, 1), got {self.leak}")
        for name in _LOADINGS:
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"activity parameter {name} must be finite, got {getattr(self, name)}")

    def _vector(self) -> np.ndarray:
        """Fitted coordinates: per Gamma (log mean, log shape), logit ε, the loadings. Means and shapes are
        far less correlated than shapes and scales, which keeps the quasi-Newton steps short."""
        out = []
        for shape, scale in ((self.r, self.alpha), (self.q, self.gamma), (self.s, self.beta)):
            out += [np.log(shape / scale), np.log(shape)]
        return np.array([*out, np.log(self.leak / (1 - self.leak)), *(getattr(self, n) for n in _LOADINGS)])

    @classmethod
    def _from_vector(cls, v: np.ndarray) -> ActivityParams:
        v = np.asarray(v, dtype=float)
        gammas = []
        for i in (0, 2, 4):
            gammas += [float(np.exp(v[i + 1])), float(np.exp(v[i + 1] - v[i]))]
        return cls(*gammas, float(1.0 / (1.0 + np.exp(-v[6]))), *map(float, v[7:10]))

    def _scales(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """α, γ, β at each activity-level node, shape (1, nodes, 1) for (persons, nodes, x) arrays."""
        return tuple(base * np.exp(-load * _G_NODES)[None, :, None] for base, load in (
            (self.alpha, self.load_order), (self.gamma, self.load_session), (self.beta, self.load_dropout)))


@dataclass(frozen=True)
class ActivityHistory:
    """Per person (arrays of one length), times in days from when the person was first seen.

    ``exposure``: first seen -> as_of; ``orders``: distinct orders; ``last_order``: time of the last order
    (0 without one); ``sessions``: session count; ``recent``: (n, LAST_SESSIONS + 1) times of the last
    sessions, oldest first, NaN-padded on the left.
    """

    exposure: np.ndarray
    orders: np.ndarray
    last_order: np.ndarray
    sessions: np.ndarray
    recent: np.ndarray

    def __len__(self) -> int:
        return len(self.exposure)

    def take(self, rows: np.ndarray) -> ActivityHistory:
        return ActivityHistory(self.exposure[rows], self.orders[rows], self.last_order[rows], self.sessions[rows],
                               self.recent[rows])


@dataclass(frozen=True)
class ActivityPosterior:
    """Per person: P(still active), P(no order within the horizon), expected orders within it, the posterior
    mean order and session rates (per day, while active) and the posterior mean activity level."""

    p_active: np.ndarray
    p_no_order: np.ndarray
    expected_orders: np.ndarray
    order_rate: np.ndarray
    session_rate: np.ndarray
    level: np.ndarray


def initial_params(history: ActivityHistory) -> ActivityParams:
    """A start from pooled rates (shape 1, the pooled mean; lapsing 5x slower than ordering; no loadings)."""
    exposure = max(float(np.sum(history.exposure)), 1.0)
    order_rate = max(float(np.sum(history.orders)), 1.0) / exposure
    session_rate = max(float(np.sum(history.sessions)), 1.0) / exposure
    return ActivityParams(r=1.0, alpha=1.0 / order_rate, q=1.0, gamma=1.0 / session_rate, s=1.0,
                          beta=5.0 / order_rate, leak=0.05, load_order=0.3, load_session=0.3, load_dropout=-0.3)


@dataclass(frozen=True)
class _Grid:
    """Lapse-time quadrature per person: x (n, 1, j), log(weight · gap) (n, 1, j), sessions after x (n, 1, j)."""

    x: np.ndarray
    log_dx: np.ndarray
    after: np.ndarray


def _grid(h: ActivityHistory) -> _Grid:
    width = h.recent.shape[1]
    after = h.recent > h.last_order[:, None]
    m = after.sum(axis=1)
    # the earliest lapse time: the last order, or the oldest kept session when all kept sessions follow it
    full = m == width
    start = np.where(full, h.recent[:, 0], h.last_order)
    m = np.where(full, width - 1, m)
    times = np.where(after, h.recent, np.inf)
    times[full, 0] = np.inf
    times = np.sort(times, axis=1)
    ends = np.concatenate([times, np.full((len(h), 1), np.inf)], axis=1)
    ends[np.arange(len(h)), m] = h.exposure
    starts = np.concatenate([start[:, None], ends[:, :-1]], axis=1)
    with np.errstate(invalid="ignore"):
        gap = np.where(np.isfinite(ends), ends - starts, 0.0)                      # (n, intervals)
    x = np.where(gap[:, :, None] > 0, starts[:, :, None] + gap[:, :, None] * _X_NODES[None, None, :], 0.0)
    with np.errstate(divide="ignore"):
        log_dx = np.log(gap[:, :, None] * _X_WEIGHTS[None, None, :])
    k = np.maximum(m[:, None] - np.arange(width + 1)[None, :], 0)
    n = len(h)
    return _Grid(x=x.reshape(n, 1, -1), log_dx=log_dx.reshape(n, 1, -1),
                 after=np.repeat(k, len(_X_NODES), axis=1).reshape(n, 1, -1).astype(float))


@dataclass(frozen=True)
class _Terms:
    """Per person and activity-level node: log P(history | g) and its split into active / lapsed-at-x, with
    the logarithms the gradient reuses."""

    log_g: np.ndarray        # (n, nodes): log P(history | g) + log weight of the node
    log_total: np.ndarray    # (n,): log P(history)
    p_active: np.ndarray     # (n, nodes): P(active | history, g)
    p_lapsed: np.ndarray     # (n, nodes, x): P(lapsed at node x | history, g)
    logs: tuple              # log(α_g + x), log(γ_g + y), log(β_g + x), y = x + ε(E - x)


def _log_sum_exp(a: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis)


def _terms(p: ActivityParams, h: ActivityHistory, g: _Grid) -> _Terms:
    alpha, gamma, beta = p._scales()
    no, ns = h.orders[:, None, None], h.sessions[:, None, None]
    E = h.exposure[:, None, None]
    norm = (gammaln(p.r + no) - gammaln(p.r) + p.r * np.log(alpha)
            + gammaln(p.q + ns) - gammaln(p.q) + p.q * np.log(gamma))[:, :, 0]
    log_active = (-(p.r + no) * np.log(alpha + E) - (p.q + ns) * np.log(gamma + E)
                  + p.s * (np.log(beta) - np.log(beta + E)))[:, :, 0]
    la, lg, lb = np.log(alpha + g.x), np.log(gamma + (g.x + p.leak * (E - g.x))), np.log(beta + g.x)
    log_lapsed = -(p.r + no) * la
    log_lapsed -= (p.q + ns) * lg
    log_lapsed -= (p.s + 1) * lb
    log_lapsed += g.after * np.log(p.leak) + g.log_dx
    log_lapsed += np.log(p.s) + p.s * np.log(beta)
    lapsed = _log_sum_exp(log_lapsed, axis=2)
    within = np.logaddexp(log_active, lapsed)
    log_g = norm + within + _G_LOG_WEIGHTS[None, :]
    log_total = _log_sum_exp(log_g, axis=1)
    np.subtract(log_lapsed, within[:, :, None], out=log_lapsed)
    return _Terms(log_g=log_g, log_total=log_total, p_active=np.exp(log_active - within),
                  p_lapsed=np.exp(log_lapsed, out=log_lapsed), logs=(la, lg, lb))


def _log_likelihood(p: ActivityParams, h: ActivityHistory, g: _Grid,
                    gradient: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """log P(history | population) per person (the constants of the Poisson terms left out), and with
    ``gradient`` its derivatives (n, 10) by the coordinates of :meth:`ActivityParams._vector`."""
    t = _terms(p, h, g)
    if not gradient:
        return t.log_total, None
    alpha, gamma, beta = p._scales()
    la, lg, lb = t.logs
    no, ns = h.orders[:, None, None], h.sessions[:, None, None]
    E = h.exposure[:, None, None]
    post = np.exp(t.log_g - t.log_total[:, None])[:, :, None]        # P(node | history), (n, nodes, 1)
    pa, pl = post * t.p_active[:, :, None], post * t.p_lapsed
    inv_a, inv_g, inv_b = np.exp(-la), np.exp(-lg), np.exp(-lb)

    def expect(active: np.ndarray, lapsed: np.ndarray, common: np.ndarray | float = 0.0) -> np.ndarray:
        """Σ over nodes (and lapse times) of the posterior times the derivative; (n, nodes)."""
        return (post * common)[:, :, 0] + (pa * active)[:, :, 0] + np.einsum("ngx,ngx->ng", pl, lapsed)

    d_r = expect(-np.log(alpha + E), -la, digamma(p.r + no) - digamma(p.r) + np.log(alpha))
    d_alpha = expect(-(p.r + no) / (alpha + E), -(p.r + no) * inv_a, p.r / alpha) * alpha[:, :, 0]
    d_q = expect(-np.log(gamma + E), -lg, digamma(p.q + ns) - digamma(p.q) + np.log(gamma))
    d_gamma = expect(-(p.q + ns) / (gamma + E), -(p.q + ns) * inv_g, p.q / gamma) * gamma[:, :, 0]
    d_s = expect(np.log(beta) - np.log(beta + E), 1.0 / p.s + np.log(beta) - lb)
    d_beta = expect(p.s / beta - p.s / (beta + E), p.s / beta - (p.s + 1) * inv_b) * beta[:, :, 0]
    d_leak = np.einsum("ngx,ngx->n", pl, -(p.q + ns) * (E - g.x) * inv_g + g.after / p.leak)
    nodes = -_G_NODES[None, :]
    # by log shape and log scale, then to (log mean, log shape): log scale = log shape - log mean
    by_shape = [d_r.sum(axis=1) * p.r, d_q.sum(axis=1) * p.q, d_s.sum(axis=1) * p.s]
    by_scale = [d_alpha.sum(axis=1), d_gamma.sum(axis=1), d_beta.sum(axis=1)]
    grad = np.stack([
        *(x for shape, scale in zip(by_shape, by_scale, strict=True) for x in (-scale, shape + scale)),
        d_leak * p.leak * (1.0 - p.leak),
        (d_alpha * nodes).sum(axis=1), (d_gamma * nodes).sum(axis=1), (d_beta * nodes).sum(axis=1),
    ], axis=1)
    return t.log_total, grad


def fit_activity(history: ActivityHistory, previous: ActivityParams | None = None) -> ActivityParams:
    """Maximum-likelihood population parameters on ``history`` (at most FIT_PERSONS persons, seeded)."""
    if len(history) == 0:
        raise ValueError("fit_activity needs at least one person, got 0")
    if len(history) > FIT_PERSONS:
        rows = np.sort(np.random.default_rng(SEED).choice(len(history), FIT_PERSONS, replace=False))
        history = history.take(rows)
    grid = _grid(history)
    bounds = [(-15.0, 5.0), (-5.0, 8.0)] * 3 + [(-12.0, 6.0)] + [(-3.0, 3.0)] * 3
    lo, hi = np.array(bounds).T
    start = np.clip((previous or initial_params(history))._vector(), lo, hi)

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ll, grad = _log_likelihood(ActivityParams._from_vector(v), history, grid, gradient=True)
            value, slope = -float(np.mean(ll)), -grad.mean(axis=0)
        if not (np.isfinite(value) and np.isfinite(slope).all()):
            return 1e12, np.zeros_like(v)
        return value, slope

    # a warm start moves little between weekly snapshots: a few steps suffice
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": WARM_STEPS if previous else 300, "ftol": 1e-8})
    best = result.x if result.fun <= objective(start)[0] else start
    return ActivityParams._from_vector(best)


def activity_posterior(history: ActivityHistory, params: ActivityParams, horizon: float = 30.0,
                       chunk: int = 4096) -> ActivityPosterior:
    """Posterior summaries per person under the population ``params`` (persons in chunks)."""
    parts = [_posterior(history.take(np.arange(lo, min(lo + chunk, len(history)))), params, horizon)
             for lo in range(0, len(history), chunk)]
    if not parts:
        return ActivityPosterior(*(np.zeros(0) for _ in range(6)))
    return ActivityPosterior(*(np.concatenate([getattr(p, f) for p in parts]) for f in (
        "p_active", "p_no_order", "expected_orders", "order_rate", "session_rate", "level")))


def _posterior(h: ActivityHistory, p: ActivityParams, horizon: float) -> ActivityPosterior:
    grid = _grid(h)
    t = _terms(p, h, grid)
    alpha, gamma, beta = (a[:, :, 0] for a in p._scales())                   # (1, nodes)
    post = np.exp(t.log_g - t.log_total[:, None])                             # (n, nodes)
    E = h.exposure[:, None]
    # active at as_of: λ | data, g ~ Gamma(r + n_o, α_g + E) and μ | data, g ~ Gamma(s, β_g + E), so the time
    # to lapse from now is Lomax(s, β_g + E); P(no order before min(lapse, H)) and E[orders] by quadrature
    a1, b1, big_b = p.r + h.orders[:, None], alpha + E, beta + E
    tt = horizon * _H_NODES[None, None, :]
    survive = (big_b[:, :, None] / (big_b[:, :, None] + tt)) ** p.s
    density = p.s / (big_b[:, :, None] + tt) * survive
    no_order_by = (b1[:, :, None] / (b1[:, :, None] + tt)) ** a1[:, :, None]
    at_h = (b1 / (b1 + horizon)) ** a1 * (big_b / (big_b + horizon)) ** p.s
    p_none_active = horizon * (density * no_order_by) @ _H_WEIGHTS + at_h
    orders_active = a1 / b1 * horizon * (survive @ _H_WEIGHTS)
    pa = t.p_active
    la, lg, _ = t.logs
    order_rate = pa * a1 / b1 + a1 * (t.p_lapsed * np.exp(-la)).sum(axis=2)
    a2 = (p.q + h.sessions)[:, None]
    session_rate = pa * a2 / (gamma + E) + a2 * (t.p_lapsed * np.exp(-lg)).sum(axis=2)
    return ActivityPosterior(
        p_active=(post * pa).sum(axis=1),
        p_no_order=(post * (pa * p_none_active + 1.0 - pa)).sum(axis=1),
        expected_orders=(post * pa * orders_active).sum(axis=1),
        order_rate=(post * order_rate).sum(axis=1),
        session_rate=(post * session_rate).sum(axis=1),
        level=post @ _G_NODES,
    )
