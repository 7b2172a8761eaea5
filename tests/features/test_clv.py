"""BG/NBD + Gamma-Gamma against the real CDNOW sample (Fader, Hardie & Lee 2005), read from the data files
of the installed ``lifetimes`` package (never imported)."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.clv import (
    BetaGeoParams,
    GammaGammaParams,
    expected_average_value,
    expected_purchases,
    fit_beta_geo,
    fit_gamma_gamma,
    probability_alive,
    rfm_summary,
)

CDNOW = Path(sysconfig.get_paths()["purelib"]) / "lifetimes" / "datasets"
PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL (2005), Table 1
needs_cdnow = pytest.mark.skipif(not (CDNOW / "CDNOW_sample.txt").exists(),
                                 reason=f"CDNOW sample not found under {CDNOW} (pip package `lifetimes`)")


@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    """The 2,357-customer sample summarised by our own code: calibration ends 1997-09-30, weeks."""
    raw = pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["customer", "master_id", "date", "quantity", "amount"], dtype={"date": str})
    return rfm_summary(raw["customer"], pd.to_datetime(raw["date"], format="%Y%m%d"), raw["amount"],
                       end="1997-09-30", unit_days=7)


@needs_cdnow
def test_bgnbd_matches_the_paper_on_cdnow(cdnow_summary):
    assert len(cdnow_summary) == 2357
    assert cdnow_summary["T"].max() == pytest.approx(39.0, abs=0.2)
    fitted = fit_beta_geo(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    for name, want in PAPER.items():
        got = getattr(fitted, name)
        assert abs(got - want) / want <= 0.02, f"{name}: fitted {got:.4f} vs paper {want}"


@needs_cdnow
def test_our_summary_equals_the_shipped_summary(cdnow_summary):
    shipped = pd.read_csv(CDNOW / "cdnow_customers_summary.csv")
    assert np.allclose(np.sort(cdnow_summary["frequency"]), np.sort(shipped["frequency"]))
    assert np.allclose(np.sort(cdnow_summary["T"]), np.sort(shipped["T"]), atol=0.01)
    fitted = fit_beta_geo(shipped["frequency"], shipped["recency"], shipped["T"])
    assert fitted.r == pytest.approx(PAPER["r"], rel=0.02) and fitted.b == pytest.approx(PAPER["b"], rel=0.02)


@needs_cdnow
def test_gamma_gamma_on_cdnow_and_forecasts(cdnow_summary):
    spend = fit_gamma_gamma(cdnow_summary["frequency"], cdnow_summary["monetary"])
    # FHL (2005b) report p = 6.25, q = 3.74, gamma = 15.44 on this sample
    assert (spend.p, spend.q, spend.gamma) == pytest.approx((6.25, 3.74, 15.44), rel=0.02)
    bg = fit_beta_geo(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    # the paper's aggregate 39-week holdout forecast is ~1,690 repeat purchases (actual 1,788)
    total = expected_purchases(bg, 39.0, cdnow_summary["frequency"], cdnow_summary["recency"],
                               cdnow_summary["T"]).sum()
    assert 1500 < total < 1900
    value = expected_average_value(spend, cdnow_summary["frequency"], cdnow_summary["monetary"])
    assert np.isfinite(value).all() and (value > 0).all()


def test_behaviour_of_the_forecasts():
    params = BetaGeoParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    # same frequency, the more recent buyer is more likely alive and buys more
    alive = probability_alive(params, [3, 3], [30.0, 5.0], [39.0, 39.0])
    assert alive[0] > alive[1] and alive[1] < 0.5
    assert probability_alive(params, [0], [0.0], [39.0])[0] == 1.0
    more = expected_purchases(params, 10.0, [3, 3], [30.0, 5.0], [39.0, 39.0])
    assert more[0] > more[1] > 0
    assert expected_purchases(params, 0.0, [2], [10.0], [20.0])[0] == pytest.approx(0.0, abs=1e-12)
    spend = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    shrunk = expected_average_value(spend, [1, 20], [100.0, 100.0])
    assert shrunk[0] < shrunk[1] < 100.0  # more purchases: closer to the customer's own mean


@pytest.mark.parametrize(("call", "message"), [
    (lambda: BetaGeoParams(r=-1.0, alpha=1.0, a=1.0, b=1.0), "r must be a positive"),
    (lambda: GammaGammaParams(p=1.0, q=0.0, gamma=1.0), "q must be a positive"),
    (lambda: fit_beta_geo([], [], []), "at least one customer"),
    (lambda: fit_beta_geo([1, 2], [5.0, 1.0], [4.0, 3.0]), "recency <= T"),
    (lambda: fit_beta_geo([1], [1.0, 2.0], [3.0]), "one shape"),
    (lambda: fit_gamma_gamma([0, 1], [0.0, 3.0]), ">= 2 repeat customers"),
    (lambda: expected_purchases(BetaGeoParams(1, 1, 2, 2), -1.0, [1], [1.0], [2.0]), "horizon t"),
])
def test_invalid_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()
