"""Propensity classifier: probability that a touch with a given action on a given channel converts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models._lgbm import LGBMBinaryBase, NotFittedError
from models.uplift import TLearnerUplift

UPLIFT_DIR = "uplift"


class PropensityClassifier(LGBMBinaryBase):
    """LightGBM binary classifier on (action_id, channel, person features) (service ``propensity_v1``).

    ``action_id`` and ``channel`` are always categorical features; their codes are learned at fit and
    stored in the model, so scoring one candidate gives the same answer as scoring it in a batch.
    Actions or channels unseen at fit are treated as missing (LightGBM's missing branch), not as errors,
    so a newly added catalog action still gets a (population-level) score.

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
