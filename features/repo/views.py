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


def _person_view(name: str, source, domain: str) -> FeatureView:
    """Every view is person-grain, weekly snapshots, online; only the name, source and domain differ."""
    return FeatureView(
        name=name,
        entities=[person],
        ttl=TTL,
        schema=_schema(name),
        source=source,
        online=True,
        owner=OWNER,
        tags={"owner": OWNER, "grain": "person-weekly", "domain": domain},
    )


person_rfm = _person_view("person_rfm", person_rfm_source, domain="value")
person_channel_engagement = _person_view("person_channel_engagement", person_channel_engagement_source, domain="engagement")
person_category_affinity = _person_view("person_category_affinity", person_category_affinity_source, domain="interest")
person_consent = _person_view("person_consent", person_consent_source, domain="consent")
person_behaviour = _person_view("person_behaviour", person_behaviour_source, domain="behaviour")
person_value = _person_view("person_value", person_value_source, domain="value")
