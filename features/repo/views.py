"""The four person-grain feature views; names and dtypes match features.engineering.VIEW_FEATURES."""

from datetime import timedelta

from entities import person
from feast import FeatureView, Field
from feast.types import Float64, Int64
from sources import (
    person_category_affinity_source,
    person_channel_engagement_source,
    person_consent_source,
    person_rfm_source,
)

from features.schema import CATEGORIES, CHANNELS, CONSENT_CHANNELS

# Snapshots are weekly; a long TTL lets training rows reach back over the whole simulated history.
TTL = timedelta(days=400)
OWNER = "data-platform@nba"


def _ints(names):
    return [Field(name=n, dtype=Int64) for n in names]


def _floats(names):
    return [Field(name=n, dtype=Float64) for n in names]


person_rfm = FeatureView(
    name="person_rfm",
    entities=[person],
    ttl=TTL,
    schema=[
        *_floats(["recency_days"]),
        *_ints(["frequency_30d", "frequency_90d"]),
        *_floats(["monetary_30d", "monetary_90d", "avg_order_value"]),
        *_ints(["orders_total"]),
        *_floats(["tenure_days", "days_since_last_visit"]),
        *_ints(["lifecycle_stage"]),
    ],
    source=person_rfm_source,
    online=True,
    owner=OWNER,
    tags={"owner": OWNER, "grain": "person-weekly", "domain": "value"},
)

person_channel_engagement = FeatureView(
    name="person_channel_engagement",
    entities=[person],
    ttl=TTL,
    schema=[
        *_ints([f"{c}_events_30d" for c in CHANNELS]),
        *_ints([f"{c}_clicks_90d" for c in CONSENT_CHANNELS]),
        *_ints([f"{c}_conversions_90d" for c in CONSENT_CHANNELS]),
        *_ints(["touches_30d"]),
        *_floats(["click_rate_90d"]),
    ],
    source=person_channel_engagement_source,
    online=True,
    owner=OWNER,
    tags={"owner": OWNER, "grain": "person-weekly", "domain": "engagement"},
)

person_category_affinity = FeatureView(
    name="person_category_affinity",
    entities=[person],
    ttl=TTL,
    schema=[*_floats([f"affinity_{c}" for c in CATEGORIES]), *_ints(["top_category"])],
    source=person_category_affinity_source,
    online=True,
    owner=OWNER,
    tags={"owner": OWNER, "grain": "person-weekly", "domain": "interest"},
)

person_consent = FeatureView(
    name="person_consent",
    entities=[person],
    ttl=TTL,
    schema=_ints([f"consent_{c}" for c in CONSENT_CHANNELS]),
    source=person_consent_source,
    online=True,
    owner=OWNER,
    tags={"owner": OWNER, "grain": "person-weekly", "domain": "consent"},
)
