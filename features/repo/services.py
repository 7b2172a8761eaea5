"""Versioned feature services: the input contract of each model family."""

from feast import FeatureService
from views import (
    person_behaviour,
    person_category_affinity,
    person_channel_engagement,
    person_consent,
    person_rfm,
    person_value,
)

churn_v1 = FeatureService(
    name="churn_v1",
    features=[person_rfm, person_channel_engagement, person_category_affinity, person_behaviour, person_value],
    description="Churn model inputs: value, engagement, interests, shopping behaviour and lifetime value.",
    tags={"owner": "data-science@nba", "model": "churn"},
)

propensity_v1 = FeatureService(
    name="propensity_v1",
    features=[person_rfm, person_channel_engagement, person_category_affinity, person_consent,
              person_behaviour, person_value],
    description="Action propensity inputs: churn inputs plus channel consent.",
    tags={"owner": "data-science@nba", "model": "propensity"},
)

decision_v1 = FeatureService(
    name="decision_v1",
    features=[person_rfm, person_channel_engagement, person_category_affinity, person_consent,
              person_behaviour, person_value],
    description="Everything the decision engine reads online for one person.",
    tags={"owner": "decisioning@nba", "model": "serving"},
)
