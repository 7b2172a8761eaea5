"""The data stage: ingestion (validation, quarantine, keying of PII), One-ID, point-in-time feature
engineering, and the Feast adapter (the declarative Feast repository lives in ``features/repo``)."""

from features.engineering import (
    VIEW_FEATURES,
    VIEW_NAMES,
    build_feature_snapshots,
    snapshot_dates,
    write_feature_tables,
)
from features.identity import (
    IdentityIndex,
    attach_person_ids,
    identity_report,
    load_resolved_events,
    read_identity_map,
    read_lake_events,
    resolve_identities,
    write_identity_map,
)
from features.ingest import IngestReport, ingest, read_lake
from features.privacy import key_identifier, mask_text, normalise_email, normalise_phone
from features.store import (
    apply,
    feature_names,
    historical_features,
    materialize,
    online_features,
    open_store,
    repo_objects,
)

__all__ = [
    "VIEW_FEATURES",
    "VIEW_NAMES",
    "IdentityIndex",
    "IngestReport",
    "apply",
    "attach_person_ids",
    "build_feature_snapshots",
    "feature_names",
    "historical_features",
    "identity_report",
    "ingest",
    "key_identifier",
    "load_resolved_events",
    "mask_text",
    "materialize",
    "normalise_email",
    "normalise_phone",
    "online_features",
    "open_store",
    "read_identity_map",
    "read_lake",
    "read_lake_events",
    "repo_objects",
    "resolve_identities",
    "snapshot_dates",
    "write_feature_tables",
    "write_identity_map",
]
