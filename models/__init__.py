"""Model classes that are trained, logged to MLflow and served: LightGBM classifiers, the PyTorch
recommender (numpy at predict time) and the Thompson-sampling budget allocator, with pyfunc wrappers."""

from models._lgbm import NotFittedError
from models.budget_bandit import ThompsonBudgetAllocator, UniformAllocator, replay_evaluate
from models.churn import ChurnClassifier
from models.propensity import PropensityClassifier
from models.pyfunc import (
    BudgetBanditPyfunc,
    ChurnPyfunc,
    PropensityPyfunc,
    RecommenderPyfunc,
    pyfunc_for,
    signature_for,
)
from models.recommender import MatrixFactorizationRecommender, PopularityRecommender

__all__ = [
    "BudgetBanditPyfunc",
    "ChurnClassifier",
    "ChurnPyfunc",
    "MatrixFactorizationRecommender",
    "NotFittedError",
    "PopularityRecommender",
    "PropensityClassifier",
    "PropensityPyfunc",
    "RecommenderPyfunc",
    "ThompsonBudgetAllocator",
    "UniformAllocator",
    "pyfunc_for",
    "signature_for",
    "replay_evaluate",
]
