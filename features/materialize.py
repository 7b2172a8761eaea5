"""Fast materialization into Feast's SQLite online store, byte for byte in Feast's own format.

Feast's ``materialize`` builds one protobuf object per feature value and upserts row by row (about 2,700
entity rows per second here). This path does the same selection — per view, the latest snapshot per
person with ``start <= event_timestamp <= end`` from the view's batch source — and writes the same SQLite
rows (``entity_key, feature_name, value, value_text, event_ts, created_ts``) with the same upsert, but
encodes whole columns at once and sends them with one ``executemany`` in one transaction. Entity keys
go through Feast's ``serialize_entity_key``; values use the protobuf wire format of ``ValueProto``
(checked against Feast's own serialisation on every call), with Feast's converter for missing values.
The registry records the materialized interval as Feast does. Other online stores use Feast's path.
"""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from config.settings import Settings
from features.store import DEFAULT_MATERIALIZE_LOOKBACK, open_store

__all__ = ["MaterializeReport", "fast_materialize", "is_sqlite_online", "latest_rows", "write_online_rows"]

_DOUBLE_TAG = 0x29  # field 5 (double_val), wire type 1 (64-bit)


@dataclass(frozen=True)
class MaterializeReport:
    """What one fast materialization wrote: entity rows and feature cells per view, and seconds taken."""

    rows: dict[str, int]
    cells: int
    seconds: float


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def is_sqlite_online(store) -> bool:
    """True when the store's online store is Feast's SQLite store in its plain configuration."""
    online = store.config.online_store
    return (getattr(online, "type", None) == "sqlite" and not getattr(online, "vector_enabled", False)
            and not getattr(online, "enable_openai_compatible_store", False))


def latest_rows(frame: pd.DataFrame, join_key: str, timestamp_field: str, start: pd.Timestamp,
                end: pd.Timestamp) -> pd.DataFrame:
    """Feast's materialization window: rows with ``start <= ts <= end``, the latest one per entity."""
    ts = _utc_index(frame[timestamp_field])
    window = frame[(ts >= start) & (ts <= end)]
    order = np.argsort(_utc_index(window[timestamp_field]).asi8, kind="stable")
    return window.iloc[order].drop_duplicates(join_key, keep="last").reset_index(drop=True)


def _entity_keys(values: np.ndarray, join_key: str, version: int) -> list[bytes]:
    """Feast's ``serialize_entity_key`` of single string keys: a constant head, the length, the bytes.

    The head comes from Feast's own function, and the first keys are checked against it; any mismatch
    (a future encoding) falls back to Feast's function for every key.
    """
    import struct

    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    def feast_key(v: str) -> bytes:
        return serialize_entity_key(EntityKey(join_keys=[join_key], entity_values=[Value(string_val=v)]),
                                    entity_key_serialization_version=version)

    strings = [str(v) for v in values]
    empty = feast_key("")
    head = empty[:-4]
    keys = [head + struct.pack("<I", len(b)) + b for b in (s.encode("utf8") for s in strings)]
    if empty[-4:] != struct.pack("<I", 0) or any(keys[i] != feast_key(strings[i]) for i in range(min(3, len(keys)))):
        keys = [feast_key(v) for v in strings]
    return keys


def _proto_cell(value, value_type) -> tuple[bytes, str | None]:
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.type_map import python_values_to_proto_values

    proto = python_values_to_proto_values([value], value_type)[0]
    return proto.SerializeToString(), extract_text_and_num(proto, False)[0]


def _encode_double(column: np.ndarray) -> tuple[list[bytes], list[str | None]]:
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.value_type import ValueType

    values = column.astype(np.float64)
    packed = np.empty(len(values), dtype=[("tag", "u1"), ("value", "<f8")])
    packed["tag"] = _DOUBLE_TAG
    packed["value"] = values
    buffer = packed.tobytes()
    encoded = [buffer[i:i + 9] for i in range(0, len(buffer), 9)]
    texts: list[str | None] = list(map(repr, values.tolist()))
    for i in np.flatnonzero(~np.isfinite(values)):
        encoded[i], texts[i] = _proto_cell(None if np.isnan(values[i]) else float(values[i]), ValueType.DOUBLE)
    if len(values):
        probe = float(values[np.isfinite(values)][0]) if np.isfinite(values).any() else 0.0
        if Value(double_val=probe).SerializeToString() != struct_double(probe):
            raise RuntimeError("ValueProto double encoding changed; use Feast's materialize (--feast)")
    return encoded, texts


def struct_double(value: float) -> bytes:
    """The wire bytes of ``ValueProto(double_val=value)`` (tag + little-endian IEEE 754)."""
    return bytes([_DOUBLE_TAG]) + np.float64(value).tobytes()


def _encode_by_unique(column: np.ndarray, value_type) -> tuple[list[bytes], list[str | None]]:
    """Columns with few distinct values (int64 codes and counts): Feast's converter once per value."""
    series = pd.Series(column)
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    cells = [_proto_cell(None if pd.isna(u) else u.item() if hasattr(u, "item") else u, value_type)
             for u in uniques]
    encoded = [cells[c][0] for c in codes]
    texts = [cells[c][1] for c in codes]
    return encoded, texts


def _encode_column(column: pd.Series, dtype) -> tuple[list[bytes], list[str | None]]:
    from feast.types import Float64, Int64
    from feast.value_type import ValueType

    if dtype == Float64:
        return _encode_double(column.to_numpy(dtype=np.float64, na_value=np.nan))
    if dtype == Int64:
        return _encode_by_unique(column.to_numpy(dtype=object), ValueType.INT64)
    return _encode_by_unique(column.to_numpy(dtype=object), dtype.to_value_type())


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class _Batch:
    """One view's rows, encoded and ready for ``executemany``: one parameter row per entity."""

    sql: str
    params: list
    cells: int


def _encode_rows(store, feature_view, frame: pd.DataFrame) -> _Batch:
    """Encode ``frame`` (join key, timestamp field, the view's features) into Feast's SQLite rows.

    One statement per entity inserts all its feature rows (names are SQL literals, the key and timestamp
    are bound once); entities in key order and features in name order, so rows arrive in primary-key order.
    """
    from feast.infra.online_stores.helpers import compute_table_id
    from feast.utils import to_naive_utc

    config = store.config
    join_key = feature_view.entity_columns[0].name if feature_view.entity_columns else "person_id"
    timestamp_field = feature_view.batch_source.timestamp_field
    features = sorted(((f.name, f.dtype) for f in feature_view.features), key=lambda f: f[0])
    n, width = len(frame), len(features)
    table = compute_table_id(config.project, feature_view,
                             config.registry.enable_online_feature_view_versioning)
    rows = ",".join(f"(?1, {_sql_literal(name)}, ?{2 * j + 3}, ?{2 * j + 4}, ?2, NULL)"
                    for j, (name, _) in enumerate(features))
    sql = (f'INSERT INTO "{table}" (entity_key, feature_name, value, value_text, event_ts, created_ts) '
           f"VALUES {rows} ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
           "value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, "
           "created_ts = excluded.created_ts;")
    if n == 0:
        return _Batch(sql, [], 0)
    keys = _entity_keys(frame[join_key].to_numpy(), join_key, config.entity_key_serialization_version)
    stamps = _utc_index(frame[timestamp_field])
    codes, uniques = pd.factorize(stamps)
    epochs = np.array([int(to_naive_utc(u.to_pydatetime()).timestamp()) for u in uniques], dtype=object)
    params = np.empty((n, 2 + 2 * width), dtype=object)
    params[:, 0] = keys
    params[:, 1] = epochs[codes]
    for j, (name, dtype) in enumerate(features):
        values, texts = _encode_column(frame[name], dtype)
        params[:, 2 + 2 * j] = values
        params[:, 3 + 2 * j] = texts
    params = params[np.argsort(np.array(keys, dtype=object), kind="stable")]
    return _Batch(sql, params.tolist(), n * width)


def _utc_index(values: pd.Series) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(values)
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def write_online_rows(store, feature_view, frame: pd.DataFrame, *, connection: sqlite3.Connection | None = None
                      ) -> int:
    """Upsert ``frame`` (join key, timestamp field, the view's features) into the view's SQLite table.

    One row per (entity, feature) exactly as Feast's ``SqliteOnlineStore.online_write_batch`` writes
    it; returns the number of cells written. ``connection`` lets callers batch several views in one
    transaction.
    """
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    batch = _encode_rows(store, feature_view, frame)
    if not batch.params:
        return 0
    own = connection is None
    conn = connection or sqlite3.connect(SqliteOnlineStore._get_db_path(store.config), timeout=60)
    try:
        if own:
            with conn:
                conn.executemany(batch.sql, batch.params)
        else:
            conn.executemany(batch.sql, batch.params)
    finally:
        if own:
            conn.close()
    return batch.cells


@contextmanager
def _entity_index_dropped(conn: sqlite3.Connection, store, feature_view):
    """Drop Feast's ``<table>_ek`` index during a bulk load and build it again after (same definition)."""
    from feast.infra.online_stores.helpers import compute_table_id

    table = compute_table_id(store.config.project, feature_view,
                             store.config.registry.enable_online_feature_view_versioning)
    found = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                         (f"{table}_ek",)).fetchone()
    if found is None or found[0] is None:
        yield
        return
    conn.execute(f'DROP INDEX "{table}_ek"')
    yield
    conn.execute(found[0])


def fast_materialize(settings: Settings, end: datetime, start: datetime | None = None,
                     views: list[str] | None = None) -> MaterializeReport:
    """Materialize every (or the named) feature view into the SQLite online store, Feast's format.

    Same window as :func:`features.store.materialize` (``start`` defaults to the views' 400-day TTL before
    ``end``); raises ValueError when the profile's online store is not plain SQLite.
    """
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    began = time.perf_counter()
    end_ts = _utc(end)
    start_ts = end_ts - DEFAULT_MATERIALIZE_LOOKBACK if start is None else _utc(start)
    if start_ts > end_ts:
        raise ValueError(f"start must not be after end, got start={start_ts} end={end_ts}")
    store = open_store(settings)
    if not is_sqlite_online(store):
        raise ValueError(f"fast materialization needs the plain sqlite online store, got "
                         f"{getattr(store.config.online_store, 'type', None)!r}; use Feast's materialize")
    selected = [fv for fv in store.list_feature_views() if fv.online and (views is None or fv.name in views)]
    if views is not None and len(selected) != len(set(views)):
        raise ValueError(f"views must name registered online feature views, got {views}")
    rows: dict[str, int] = {}
    cells = 0
    path = SqliteOnlineStore._get_db_path(store.config)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -4194304")  # up to 4 GiB of page cache, this connection only
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "delete":
            conn.execute("PRAGMA journal_mode = MEMORY")  # this connection only; DELETE mode is not persistent
        def prepare(fv) -> tuple[int, _Batch]:
            source = pd.read_parquet(fv.batch_source.path)
            latest = latest_rows(source, fv.entity_columns[0].name, fv.batch_source.timestamp_field,
                                 start_ts, end_ts)
            return len(latest), _encode_rows(store, fv, latest)

        # encode the next view on a worker thread while SQLite (which releases the GIL) writes this one
        with conn, ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(prepare, selected[0]) if selected else None
            for i, fv in enumerate(selected):
                n_rows, batch = pending.result()
                pending = pool.submit(prepare, selected[i + 1]) if i + 1 < len(selected) else None
                with _entity_index_dropped(conn, store, fv):
                    if batch.params:
                        conn.executemany(batch.sql, batch.params)
                cells += batch.cells
                rows[fv.name] = n_rows
                del batch
    finally:
        conn.close()
    for fv in selected:
        store.registry.apply_materialization(fv, store.project, start_ts.to_pydatetime(),
                                             end_ts.to_pydatetime(), commit=False)
    store.registry.commit()
    return MaterializeReport(rows=rows, cells=cells, seconds=time.perf_counter() - began)
