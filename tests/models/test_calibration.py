import numpy as np
import pytest

from models.calibration import (
    Calibrator,
    brier_score,
    calibration_table,
    expected_calibration_error,
    fit_calibrator,
)


def _overconfident(n: int, seed: int):
    rng = np.random.default_rng(seed)
    p_true = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < p_true).astype(int)
    logit = np.log(p_true / (1 - p_true))
    raw = 1 / (1 + np.exp(-3.0 * logit))  # three times too sure of itself
    return raw, y


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_lowers_ece_and_brier_on_fresh_rows(method):
    raw, y = _overconfident(20_000, seed=0)
    cal = fit_calibrator(raw[:10_000], y[:10_000], method)
    fresh_raw, fresh_y = raw[10_000:], y[10_000:]
    fixed = cal.transform(fresh_raw)
    assert expected_calibration_error(fresh_y, fixed) < 0.02 < expected_calibration_error(fresh_y, fresh_raw)
    assert brier_score(fresh_y, fixed) < brier_score(fresh_y, fresh_raw)
    assert Calibrator.from_dict(cal.to_dict()).transform(fresh_raw) == pytest.approx(fixed)


def test_metrics_on_known_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.0, 0.0, 1.0, 1.0])
    assert brier_score(y, p) == 0 and expected_calibration_error(y, p, bins=2) == 0
    assert brier_score(y, np.full(4, 0.5)) == 0.25
    mean_p, rate, counts = calibration_table(y, np.array([0.1, 0.2, 0.3, 0.4]), bins=2)
    assert mean_p == pytest.approx([0.15, 0.35]) and rate.tolist() == [0.0, 1.0] and counts.tolist() == [2, 2]
    assert expected_calibration_error(y, np.array([0.1, 0.2, 0.3, 0.4]), bins=2) == pytest.approx(0.4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="method"):
        fit_calibrator(np.array([0.1, 0.9]), np.array([0, 1]), "beta")
    with pytest.raises(ValueError, match="both classes"):
        fit_calibrator(np.array([0.1, 0.9]), np.array([1, 1]))
    with pytest.raises(ValueError, match="2 labels"):
        fit_calibrator(np.array([0.1, 0.5, 0.9]), np.array([0, 1]))
