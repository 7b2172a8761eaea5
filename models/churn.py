"""Churn classifier: probability that a customer places no order in the next 30 days."""

from __future__ import annotations

from models._lgbm import LGBMBinaryBase


class ChurnClassifier(LGBMBinaryBase):
    """LightGBM binary classifier on person features (feature service ``churn_v1``).

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, feature_fraction, reg_lambda : LightGBM
        boosting parameters (defaults 200, 0.05, 31, 20, 0.9, 1.0).
    n_jobs : int, default=2
    seed : int, default=0

    Attributes
    ----------
    feature_names_ : list[str]
        Column order learned at fit; predict reads these columns by name (extra columns are ignored).
    categories_ : dict[str, list[str]]
        Stored category codes of the string columns (e.g. lifecycle_stage, top_category).
    booster_ : lightgbm.Booster
    """

    # the activity model's forecasts (features.activity): more expected activity never means more churn
    _monotone = {"activity_p_no_order_30d": 1, "activity_p_active": -1, "activity_expected_orders_30d": -1}
