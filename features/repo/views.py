"""The person-grain feature views; names and dtypes match features.engineering.VIEW_FEATURES."""

from datetime import timedelta

from entities import person
from feast import FeatureView, Field
from feast.types import Float64, Int64
from sources import (
    person_behaviour_source,
    person_category_affinity_source,
    person_channel_engagement_source,
    person_consent_source,
    person_rfm_source,
    person_value_source,
)

from features.engineering import VIEW_FEATURES

# Snapshots are weekly; a long TTL lets training rows reach back over the whole simulated history.
TTL = timedelta(days=400)
OWNER = "data-platform@nba"


def _schema(view: str) -> list[Field]:
    """Fields straight from the feature engineering contract, so the two cannot drift apart."""
    return [Field(name=n, dtype=Int64 if kind == "int" else Float64) for n, kind in VIEW_FEATURES[view].items()]


person_rfm = FeatureView(
    name="person_rfm",
    entities=[person],
    ttl=TTL,
    schema=_schema("person_rfm"),
    source=person_rfm_source,
    online=True,
    owner=OWNER,
    tags={"owner": OWNER, "grain": "person-weekly", "domain": "value"},
)

person_channel_engagement = FeatureView(
    name="person_channel_engagement",
    entities=[person],
    ttl=TTL,
    schema=_schema("person_channel_engagement"),
    source=person_channel_engagement_source,
    online=True,
    owner=OWNER,
    tags={"owner": OWNER, "grain": "person-weekly", "domain": "engagement"},
)

person_category_affinity = FeatureView(
    name="person_category_affinity",
    entities=[person],
    ttl=TTL,
    schema=_schema("person_category_affinity"),
    source=person_category_affinity_source,
    online=True,
    owner=OWNER,
    tags={"owner": OWNER, "grain": "person-weekly", "domain": "interest"},
)

person_consent = FeatureView(
    name="person_consent",
    entities=[person],
    ttl=TTL,
    schema=_schema("person_consent"),
    source=person_consent_source,
    online=True,
    owner=OWNER,
    tags={"owner": OWNER, "grain": "person-weekly", "domain": "consent"},
)

person_behaviour = FeatureView(
    name="person_behaviour",
    entities=[person],
    ttl=TTL,
    schema=_schema("person_behaviour"),
    source=person_behaviour_source,
    online=True,
    owner=OWNER,
    tags={"owner": OWNER, "grain": "person-weekly", "domain": "behaviour"},
)

person_value = FeatureView(
    name="person_value",
    entities=[person],
    ttl=TTL,
    schema=_schema("person_value"),
    source=person_value_source,
    online=True,
    owner=OWNER,
    tags={"owner": OWNER, "grain": "person-weekly", "domain": "value"},
)
