"""The one entity: a resolved person (One-ID), joined on ``person_id``."""

from feast import Entity, ValueType

person = Entity(
    name="person",
    join_keys=["person_id"],
    value_type=ValueType.STRING,
    description="A customer resolved by One-ID across channels.",
    tags={"owner": "data-platform"},
)
