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
from features.materialize import MaterializeReport, fast_materialize
from features.privacy import key_identifier, mask_text, normalise_email, normalise_phone
from features.realtime import PushReport, RealtimeUpdater, push_events, push_files
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
    "MaterializeReport",
    "PushReport",
    "RealtimeUpdater",
    "apply",
    "attach_person_ids",
    "build_feature_snapshots",
    "fast_materialize",
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
    "push_events",
    "push_files",
    "read_identity_map",
    "read_lake",
    "read_lake_events",
    "repo_objects",
    "resolve_identities",
    "snapshot_dates",
    "write_feature_tables",
    "write_identity_map",
]
