"""Propensity classifier: probability that a touch with a given action on a given channel converts."""

from __future__ import annotations

from models._lgbm import LGBMBinaryBase


class PropensityClassifier(LGBMBinaryBase):
    """LightGBM binary classifier on (action_id, channel, person features) (service ``propensity_v1``).

    ``action_id`` and ``channel`` are always categorical features; their codes are learned at fit and
    stored in the model, so scoring one candidate gives the same answer as scoring it in a batch.
    Actions or channels unseen at fit are treated as missing (LightGBM's missing branch), not as errors,
    so a newly added catalog action still gets a (population-level) score.

    Attributes
    ----------
    feature_names_ : list[str]
    categories_ : dict[str, list[str]]
        Includes ``action_id`` and ``channel``.
    booster_ : lightgbm.Booster
    """

    _forced_categoricals = ("action_id", "channel")
