"""Propensity classifier: probability that a touch with a given action on a given channel converts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from models._lgbm import LGBMBinaryBase, NotFittedError
from models.uplift import TLearnerUplift

UPLIFT_DIR = "uplift"
# per-channel engagement features (``<channel>_<stat>``) also given as "this candidate's channel" features
CHANNEL_STATS = ("open_rate_smoothed", "click_rate_smoothed", "session_share", "conversions_90d")


class PropensityClassifier(LGBMBinaryBase):
    """LightGBM binary classifier on (action_id, channel, person features) (service ``propensity_v1``).

    ``action_id`` and ``channel`` are always categorical features; their codes are learned at fit and
    stored in the model, so scoring one candidate gives the same answer as scoring it in a batch.
    Actions or channels unseen at fit are treated as missing (LightGBM's missing branch), not as errors,
    so a newly added catalog action still gets a (population-level) score.

    Derived features (see :class:`models._lgbm.LGBMBinaryBase`) give each row the person's engagement
    on *the row's* channel (``candidate_channel_<stat>`` from ``<channel>_<stat>``, :data:`CHANNEL_STATS`)
    and, with ``action_categories`` (action id -> product category, from the catalog), the person's
    affinity to *the row's action's* category (``candidate_action_affinity`` from ``affinity_<category>``).
    On the simulated default world they raised held-out AUC from 0.7175 to 0.7306 (4 seeds each).
    Only actions and channels seen at fit get them; others read as missing.

    Optionally carries an uplift model (``uplift_``, a :class:`models.uplift.TLearnerUplift` on person
    features, attached with :meth:`attach_uplift`) saved alongside; ``predict_uplift`` reads the person
    columns it needs from the same frame ``predict_proba`` takes, so serving fetches nothing more.

    Attributes
    ----------
    feature_names_ : list[str]
    categories_ : dict[str, list[str]]
        Includes ``action_id`` and ``channel``.
    booster_ : lightgbm.Booster
    uplift_ : TLearnerUplift or None
    """

    _forced_categoricals = ("action_id", "channel")

    def __init__(self, *, action_categories: Mapping[str, str] | None = None, **params) -> None:
        super().__init__(**params)
        self.action_categories = dict(action_categories or {})

    def get_params(self) -> dict:
        return {**super().get_params(), "action_categories": dict(self.action_categories)}

    def _derived_features(self) -> dict[str, tuple[str, dict[str, str]]]:
        inputs = set(self.feature_names_)
        derived = {}
        for stat in CHANNEL_STATS:
            sources = {c: f"{c}_{stat}" for c in self.categories_["channel"] if f"{c}_{stat}" in inputs}
            if sources:
                derived[f"candidate_channel_{stat}"] = ("channel", sources)
        sources = {a: f"affinity_{c}" for a, c in self.action_categories.items()
                   if a in self.categories_["action_id"] and f"affinity_{c}" in inputs}
        if sources:
            derived["candidate_action_affinity"] = ("action_id", sources)
        return derived

    def attach_uplift(self, uplift: TLearnerUplift) -> PropensityClassifier:
        self.uplift_ = uplift
        return self

    def predict_uplift(self, X: pd.DataFrame) -> np.ndarray:
        """P(buy | touched) - P(buy | not touched) per row (person features; extra columns ignored)."""
        uplift = getattr(self, "uplift_", None)
        if uplift is None:
            raise NotFittedError("this propensity model carries no uplift model: train it with uplift data")
        return uplift.predict_uplift(X)

    def save(self, directory: str | Path) -> Path:
        directory = super().save(directory)
        if getattr(self, "uplift_", None) is not None:
            self.uplift_.save(directory / UPLIFT_DIR)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> PropensityClassifier:
        model = super().load(directory)
        path = Path(directory) / UPLIFT_DIR
        model.uplift_ = TLearnerUplift.load(path) if path.exists() else None
        return model
