"""Fast online feature reads for one person: the Feast SQLite online tables read directly.

``FeatureStore.get_online_features`` costs ~10 ms per call here (registry lookups, proto plumbing,
response building); the decision budget is ~1 ms. The Feast store is still the source of truth: the
feature service's views, their table names and entity key encoding come from Feast at start-up, values
are decoded with Feast's own ``ValueProto`` and type map, and a test checks equality with
``get_online_features``. Profiles whose online store is not SQLite (Redis in production) keep the Feast
call through :class:`FeastOnlineReader`.

A missing, locked or unreadable store raises :class:`OnlineStoreUnavailable`, so the service can answer
in degraded mode instead of failing; every call retries, so recovery needs no restart.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from config import Settings
from features.store import online_features, open_store

__all__ = [
    "DECISION_SERVICE",
    "FeastOnlineReader",
    "LazyReader",
    "OnlineStoreUnavailable",
    "SqliteOnlineReader",
    "open_online_reader",
]

DECISION_SERVICE = "decision_v1"
# Feast returns these proto fields unchanged; everything else (timestamps, lists, JSON) goes through its
# type map so values stay identical to get_online_features.
_SCALARS = frozenset({"double_val", "float_val", "int64_val", "int32_val", "string_val", "bool_val"})
BUSY_TIMEOUT_S = 0.05  # a locked store must fail fast: degraded within the latency budget, not a hang
KEY_CACHE_SIZE = 1_000_000
# pages read through a memory map, not a read() call each: ~110 -> ~75 us per person once the store is
# larger than SQLite's page cache (SQLite caps the size at its compile-time maximum)
MMAP_BYTES = 1 << 31
VALUE_CACHE_SIZE = 200_000
_MISSING = object()


class OnlineStoreUnavailable(RuntimeError):
    """The online store cannot be read right now (missing file, locked, corrupt, unreachable)."""


@dataclass(frozen=True)
class _View:
    table: str
    features: tuple[str, ...]


class SqliteOnlineReader:
    """Reads one person's features of a feature service straight from Feast's SQLite online tables.

    Parameters
    ----------
    path : Path
        The SQLite online store file (``settings.feast_dir / "online.db"`` in the embedded profile).
    views : sequence of (table, feature names)
        The service's views as Feast names their tables (``<project>_<view>``).
    key_version : int
        Feast's ``entity_key_serialization_version``.
    """

    def __init__(self, path: Path, views: list[tuple[str, tuple[str, ...]]], key_version: int = 3) -> None:
        self.path = Path(path)
        self.views = tuple(_View(t, tuple(f)) for t, f in views)
        self.key_version = key_version
        self.feature_names = tuple(n for v in self.views for n in v.features)
        self._wanted = tuple(frozenset(v.features) for v in self.views)  # per view, in view order
        # a view by its position (a small int costs no allocation per row, unlike its table name)
        self._sql = " UNION ALL ".join(
            f"SELECT {i}, feature_name, value FROM \"{v.table}\" WHERE entity_key = ?" for i, v in enumerate(self.views)
        )
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        self._serialize_key, self._EntityKey, self._Value = serialize_entity_key, EntityKey, Value
        self._to_python = feast_value_type_to_python_type
        self._local = threading.local()
        self._keys: dict[str, bytes] = {}
        # serialized scalar -> value: most feature blobs repeat (counts, flags, consents), and a dict lookup
        # is several times cheaper than a proto parse; scalars are immutable, so sharing them is safe
        self._values: dict[bytes, object] = {}

    def _entity_key(self, person_id: str) -> bytes:
        """Feast's serialized key of one ``person_id`` (memoised: the proto round trip costs ~40 us)."""
        key = self._keys.get(person_id)
        if key is None:
            proto = self._EntityKey(join_keys=["person_id"], entity_values=[self._Value(string_val=person_id)])
            key = self._serialize_key(proto, entity_key_serialization_version=self.key_version)
            if len(self._keys) < KEY_CACHE_SIZE:
                self._keys[person_id] = key
        return key

    def _connection(self) -> sqlite3.Connection:
        """One read-only connection per thread, reopened when the file was replaced (re-materialized)."""
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            self._local.conn = None
            raise OnlineStoreUnavailable(f"online store {self.path} is missing: {exc.strerror}") from None
        identity = (stat.st_ino, stat.st_dev)
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.identity != identity:
            if conn is not None:
                conn.close()
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._local.conn, self._local.identity = conn, identity
        return conn

    def _decode(self, blob: bytes):
        """One stored ``ValueProto`` as Feast's ``get_online_features`` returns it (None when unset)."""
        value = self._values.get(blob, _MISSING)
        if value is not _MISSING:
            return value
        proto = self._Value()
        proto.ParseFromString(blob)
        kind = proto.WhichOneof("val")
        if kind is None:
            return None
        if kind not in _SCALARS:
            return self._to_python(proto)  # lists, timestamps: fresh objects every time
        value = getattr(proto, kind)
        if len(self._values) < VALUE_CACHE_SIZE:
            self._values[blob] = value
        return value

    def read(self, person_id: str) -> dict[str, object] | None:
        """``{feature: value}`` for the service's features (None where unset); None if the person has no row."""
        key = self._entity_key(person_id)
        try:
            rows = self._connection().execute(self._sql, (key,) * len(self.views)).fetchall()
        except sqlite3.Error as exc:
            self._local.conn = None
            raise OnlineStoreUnavailable(f"online store {self.path} unreadable: {exc}") from None
        if not rows:
            return None
        values: dict[str, object] = dict.fromkeys(self.feature_names)
        cached, decode = self._values, self._decode
        wanted = self._wanted
        for view, name, blob in rows:
            if name in wanted[view]:
                value = cached.get(blob, _MISSING)
                values[name] = decode(blob) if value is _MISSING else value
        return values

    __call__ = read

    def read_many(self, person_ids: list[str], chunk: int = 500) -> list[dict[str, object] | None]:
        """:meth:`read` for many persons with one query per view and chunk (batch decisions)."""
        keys = [self._entity_key(p) for p in person_ids]
        found: dict[bytes, dict[str, object]] = {}
        cached, decode = self._values, self._decode
        try:
            conn = self._connection()
            for start in range(0, len(keys), chunk):
                part = list(dict.fromkeys(keys[start:start + chunk]))
                marks = ",".join("?" * len(part))
                for view, wanted in zip(self.views, self._wanted, strict=True):
                    rows = conn.execute(f'SELECT entity_key, feature_name, value FROM "{view.table}" '
                                        f"WHERE entity_key IN ({marks})", part).fetchall()
                    for key, name, blob in rows:
                        if name not in wanted:
                            continue
                        values = found.get(key)
                        if values is None:
                            values = found[key] = dict.fromkeys(self.feature_names)
                        value = cached.get(blob, _MISSING)
                        values[name] = decode(blob) if value is _MISSING else value
        except sqlite3.Error as exc:
            self._local.conn = None
            raise OnlineStoreUnavailable(f"online store {self.path} unreadable: {exc}") from None
        return [None if k not in found else dict(found[k]) for k in keys]


@dataclass
class FeastOnlineReader:
    """The Feast SDK path (any online store, e.g. Redis); store errors become OnlineStoreUnavailable."""

    store: object
    service: str = DECISION_SERVICE

    def read(self, person_id: str) -> Mapping[str, object] | None:
        try:
            values = online_features(self.store, [person_id], self.service)
        except Exception as exc:  # noqa: BLE001 - any store failure means "degraded", never a 500
            raise OnlineStoreUnavailable(f"online store read failed: {type(exc).__name__}: {exc}") from None
        row = {k: v[0] for k, v in values.items() if k != "person_id"}
        if all(v is None for v in row.values()):
            return None
        return row

    __call__ = read


def open_online_reader(settings: Settings, service: str = DECISION_SERVICE):
    """The fastest correct reader for the profile: direct SQLite for the embedded store, else Feast."""
    store = open_store(settings)
    config = store.config
    online = config.online_store
    if getattr(online, "type", None) != "sqlite":
        return FeastOnlineReader(store, service)
    feature_service = store.get_feature_service(service, allow_cache=True)
    views = [
        (f"{config.project}_{p.name}", tuple(f.name for f in p.features))
        for p in feature_service.feature_view_projections
    ]
    path = Path(online.path)
    if not path.is_absolute():
        path = Path(config.repo_path) / path
    return SqliteOnlineReader(path, views, config.entity_key_serialization_version)


class LazyReader:
    """Opens the real reader on first use, and again after a failed open (at most every ``retry_s``), so a
    service started before the store exists answers degraded, then recovers without a restart."""

    def __init__(self, opener: Callable[[], Callable[[str], Mapping | None]], retry_s: float = 1.0) -> None:
        self.opener = opener
        self.retry_s = retry_s
        self.reader: Callable[[str], Mapping | None] | None = None
        self._next_try = 0.0
        self._error = ""
        self._lock = threading.Lock()

    def open(self):
        """The real reader, opened now if it is not yet; raises :class:`OnlineStoreUnavailable` if it cannot
        be (the service calls it at start-up, so lazy imports happen before its heap is frozen)."""
        with self._lock:
            if self.reader is None:
                if time.monotonic() < self._next_try:
                    raise OnlineStoreUnavailable(self._error)
                try:
                    self.reader = self.opener()
                except Exception as exc:  # noqa: BLE001 - registry/store missing: degrade, retry later
                    self._next_try = time.monotonic() + self.retry_s
                    self._error = f"cannot open the online store: {type(exc).__name__}: {exc}"
                    raise OnlineStoreUnavailable(self._error) from None
            return self.reader

    def __call__(self, person_id: str):
        reader = self.reader or self.open()
        return reader(person_id)

    def read_many(self, person_ids: list[str]) -> list[Mapping | None]:
        reader = self.reader or self.open()
        many = getattr(reader, "read_many", None)
        return many(person_ids) if many is not None else [reader(p) for p in person_ids]
