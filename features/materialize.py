"""Fast materialization into Feast's SQLite online store, byte for byte in Feast's own format.

Feast's ``materialize`` builds one protobuf object per feature value and upserts row by row (about 800
entity rows per second for ~100 features). This path does the same selection — per view, the latest
snapshot per entity with ``start <= event_timestamp <= end`` from the view's batch source — and writes the
same SQLite rows (``entity_key, feature_name, value, value_text, event_ts, created_ts``) with the same
upsert, but makes no Python object per cell: :mod:`features.online_encoding` packs each view's cells into
one buffer of fixed-width slots, and one ``INSERT ... SELECT`` per view cuts the rows out of it inside
SQLite, in primary-key order, while a worker thread packs the next view (SQLite releases the GIL). A
store without rows first gets 32 KiB pages (see :func:`_prefer_larger_pages`). The registry records the
materialized interval as Feast does. Other online stores use Feast's path.
"""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from config.settings import Settings
from features.online_encoding import NULL_TEXT, cell_slots, digits, serialized_keys
from features.store import DEFAULT_MATERIALIZE_LOOKBACK, open_store

__all__ = ["MaterializeReport", "fast_materialize", "is_sqlite_online", "latest_rows", "write_online_rows"]

CHUNK_BYTES = 1 << 26  # packed cells bound per INSERT (SQLite refuses blobs over 1e9 bytes)
PAGE_SIZE = 32768  # for a store without rows, see _prefer_larger_pages
_ENTITIES, _FEATURES = "temp.nba_materialize_entities", "temp.nba_materialize_features"
# One row per entity from the entity records: key length (4 digits), event_ts (20 digits), key.
_FILL_ENTITIES = (
    "INSERT INTO {entities} WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2) "
    "SELECT i, substr(?1, i * {width} + 25, CAST(substr(?1, i * {width} + 1, 4) AS INTEGER)), "
    "CAST(substr(?1, i * {width} + 5, 20) AS INTEGER), 1 + i * {stride} FROM n")
# One row per (entity, feature): the slot's value and text are byte ranges of the bound cell records; a
# feature whose cells all have the same lengths (f.value_length, f.text_length) skips reading them per cell.
_UPSERT = (
    'INSERT INTO "{table}" (entity_key, feature_name, value, value_text, event_ts, created_ts) '
    "SELECT e.k, f.name, substr(?1, e.base + f.value, "
    "coalesce(f.value_length, CAST(substr(?1, e.base + f.slot, 2) AS INTEGER))), "
    "CAST(substr(?1, e.base + f.text, coalesce(f.text_length, "
    "nullif(CAST(substr(?1, e.base + f.slot + 2, 2) AS INTEGER), {null_text}))) AS TEXT), e.ts, NULL "
    "FROM {entities} AS e CROSS JOIN {features} AS f WHERE true ORDER BY e.i, f.j "
    "ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, "
    "value_text = excluded.value_text, event_ts = excluded.event_ts, created_ts = excluded.created_ts")


@dataclass(frozen=True)
class MaterializeReport:
    """What one fast materialization wrote: entity rows and feature cells per view, and seconds taken."""

    rows: dict[str, int]
    cells: int
    seconds: float


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _nanoseconds(values) -> np.ndarray:
    """Timestamps (naive ones taken as UTC) as int64 nanoseconds since the epoch."""
    index = pd.DatetimeIndex(values)
    return (index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")).as_unit("ns").asi8


def is_sqlite_online(store) -> bool:
    """True when the store's online store is Feast's SQLite store in its plain configuration."""
    online = store.config.online_store
    return (getattr(online, "type", None) == "sqlite" and not getattr(online, "vector_enabled", False)
            and not getattr(online, "enable_openai_compatible_store", False))


def _latest_positions(entity_codes: np.ndarray, stamps: np.ndarray, start: int, end: int) -> np.ndarray:
    """Positions of the rows with ``start <= stamp <= end`` that are the latest of their entity.

    Ties on the timestamp go to the later row, as a stable sort by time keeping the last row does.
    """
    rows = np.flatnonzero((stamps >= start) & (stamps <= end) & (entity_codes >= 0))
    order = np.lexsort((rows, stamps[rows], entity_codes[rows]))
    grouped = entity_codes[rows][order]
    last = np.ones(len(grouped), dtype=bool)
    last[:-1] = grouped[1:] != grouped[:-1]
    return rows[order][last]


def latest_rows(frame: pd.DataFrame, join_key: str, timestamp_field: str, start: pd.Timestamp,
                end: pd.Timestamp) -> pd.DataFrame:
    """Feast's materialization window: rows with ``start <= ts <= end``, the latest one per entity."""
    stamps = _nanoseconds(frame[timestamp_field])
    picked = _latest_positions(pd.factorize(frame[join_key])[0], stamps, _utc(start).value, _utc(end).value)
    return frame.iloc[np.sort(picked)].reset_index(drop=True)


def _read_latest(feature_view, start: pd.Timestamp, end: pd.Timestamp) -> pa.Table:
    """The batch-source rows of the view that Feast would materialize for the window (one per entity)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    join_key, timestamp_field = feature_view.entity_columns[0].name, feature_view.batch_source.timestamp_field
    table = pq.read_table(feature_view.batch_source.path,
                          columns=[join_key, timestamp_field, *(f.name for f in feature_view.features)])
    codes = pc.dictionary_encode(table.column(join_key).combine_chunks()).indices
    stamps = _nanoseconds(table.column(timestamp_field).to_numpy(zero_copy_only=False))
    positions = _latest_positions(codes.fill_null(-1).to_numpy(zero_copy_only=False), stamps, start.value,
                                  end.value)
    return table.take(positions)


@dataclass(frozen=True)
class _Packed:
    """One view's rows, ready for :func:`_write`: entities in key order, features in name order.

    ``entities`` has one record per entity: the key's length (4 digits), the event timestamp (20 digits)
    and the serialized key. ``slots`` has one record per entity too: feature ``j``'s slot (see
    :mod:`features.online_encoding`) starts at byte ``offsets[j]``, its text ``4 + value_widths[j]`` later.
    ``uniform[j]`` is (value length, text length) when all of feature ``j``'s cells share them (None each
    otherwise; a NULL text is never uniform).
    """

    table: str
    entities: np.ndarray
    names: list[str]
    offsets: list[int]
    value_widths: list[int]
    uniform: list[tuple[int | None, int | None]]
    slots: np.ndarray

    @property
    def cells(self) -> int:
        return len(self.entities) * len(self.names)


def _epochs(stamps: np.ndarray) -> np.ndarray:
    """``event_ts`` as Feast's SQLite store writes it: ``int(to_naive_utc(ts).timestamp())`` once per ts."""
    from feast.utils import to_naive_utc

    codes, uniques = pd.factorize(stamps)
    epochs = [int(to_naive_utc(pd.Timestamp(int(u), tz="UTC").to_pydatetime()).timestamp()) for u in uniques]
    return np.array(epochs, dtype=np.int64)[codes]


def _pack(store, feature_view, table: pa.Table) -> _Packed:
    """Encode ``table`` (join key, timestamp field, the view's features) into Feast's SQLite cells."""
    from feast.infra.online_stores.helpers import compute_table_id

    config = store.config
    if feature_view.batch_source.created_timestamp_column:
        raise ValueError(f"{feature_view.name} has a created timestamp column; use Feast's materialize")
    join_key = feature_view.entity_columns[0].name
    features = sorted(((f.name, f.dtype) for f in feature_view.features), key=lambda f: f[0])
    keys, sizes = serialized_keys(table.column(join_key).combine_chunks(), join_key,
                                  config.entity_key_serialization_version)
    order = np.argsort(keys.view(f"S{keys.shape[1]}").ravel(), kind="stable") if len(keys) else np.arange(0)
    table = table.take(order)

    def column(name: str) -> np.ndarray:
        return table.column(name).to_numpy(zero_copy_only=False)  # as Feast's materialize converts it

    stamps = _nanoseconds(column(feature_view.batch_source.timestamp_field))
    entities = np.concatenate([digits(sizes[order], 4), digits(_epochs(stamps), 20), keys[order]], axis=1)
    blocks = [cell_slots(column(name), dtype) for name, dtype in features]
    offsets = np.cumsum([0] + [slots.shape[1] for slots, _ in blocks[:-1]]).tolist()
    slots = (np.concatenate([slots for slots, _ in blocks], axis=1) if blocks
             else np.zeros((len(order), 0), dtype=np.uint8))
    return _Packed(compute_table_id(config.project, feature_view,
                                    config.registry.enable_online_feature_view_versioning),
                   entities, [name for name, _ in features], offsets, [width for _, width in blocks],
                   [_uniform_lengths(block) for block, _ in blocks], slots)


def _uniform_lengths(slots: np.ndarray) -> tuple[int | None, int | None]:
    """(value length, text length) shared by every cell of a column, each None when they differ."""
    if not len(slots):
        return None, None
    same = (slots[:, :4] == slots[0, :4]).all(axis=0)
    value, text = int(slots[0, :2].tobytes()), int(slots[0, 2:4].tobytes())
    return (value if same[:2].all() else None), (text if same[2:].all() and text != NULL_TEXT else None)


def _write(conn: sqlite3.Connection, packed: _Packed) -> None:
    """Upsert the packed cells with one ``INSERT ... SELECT`` per chunk of :data:`CHUNK_BYTES`.

    Entities and features go to two temporary tables, each filled by one statement (a statement per row
    would also trade the GIL with the packing thread at every row); their cross join in rowid order gives
    the rows in primary-key order, so every b-tree grows at its end. The conflict clause is Feast's, so
    rows of other entities stay and existing ones are replaced.
    """
    if not packed.cells:
        return
    width, stride = packed.entities.shape[1], packed.slots.shape[1]
    conn.execute(f"CREATE TABLE {_ENTITIES} (i INTEGER PRIMARY KEY, k BLOB, ts INTEGER, base INTEGER)")
    conn.execute(f"CREATE TABLE {_FEATURES} (j INTEGER PRIMARY KEY, name TEXT, slot INTEGER, value INTEGER, "
                 "text INTEGER, value_length INTEGER, text_length INTEGER)")
    try:
        columns = zip(packed.names, packed.offsets, packed.value_widths, packed.uniform, strict=True)
        features = [(j, name, off, off + 4, off + 4 + vw, *lengths)
                    for j, (name, off, vw, lengths) in enumerate(columns)]
        marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(features))
        conn.execute(f"INSERT INTO {_FEATURES} VALUES {marks}", [v for row in features for v in row])
        fill = _FILL_ENTITIES.format(entities=_ENTITIES, width=width, stride=stride)
        upsert = _UPSERT.format(table=packed.table, entities=_ENTITIES, features=_FEATURES,
                                null_text=NULL_TEXT)
        per_chunk = max(1, CHUNK_BYTES // max(stride, 1))
        for first in range(0, len(packed.entities), per_chunk):
            entities = packed.entities[first:first + per_chunk]
            conn.execute(f"DELETE FROM {_ENTITIES}")
            conn.execute(fill, (entities, len(entities)))
            conn.execute(upsert, (packed.slots[first:first + per_chunk],))
    finally:
        conn.execute(f"DROP TABLE {_ENTITIES}")
        conn.execute(f"DROP TABLE {_FEATURES}")


def _prefer_larger_pages(conn: sqlite3.Connection) -> None:
    """Give an online store with no rows yet :data:`PAGE_SIZE` pages before the first load.

    A load writes ~200 bytes per cell into three b-trees, and with SQLite's default 4 KiB pages much of its
    time is per-page work (index page splits, one ``write`` per page): 32 KiB pages cut the 100k-person
    load by ~25% (16 KiB: ~20%), while the service's point reads (``serving.online``, memory-mapped) stay
    within ~7% (p50 ~200 vs ~188 us per person; 64 KiB pages made them ~35% slower). Same rows, same
    schema; only the file's page size differs. VACUUM of a file without rows takes milliseconds; a store
    with rows, in WAL mode (where the page size cannot change) or held by another connection keeps its
    page size.
    """
    if conn.execute("PRAGMA page_size").fetchone()[0] >= PAGE_SIZE:
        return
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if any(conn.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone() for name in tables):
        return
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    try:
        conn.execute("VACUUM")
    except sqlite3.OperationalError:  # another connection holds the file: load with the current pages
        pass


def write_online_rows(store, feature_view, frame: pd.DataFrame, *,
                      connection: sqlite3.Connection | None = None) -> int:
    """Upsert ``frame`` (join key, timestamp field, the view's features) into the view's SQLite table.

    One row per (entity, feature) exactly as Feast's ``SqliteOnlineStore.online_write_batch`` writes
    it; returns the number of cells written. ``connection`` lets callers batch several views in one
    transaction.
    """
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    packed = _pack(store, feature_view, pa.Table.from_pandas(frame, preserve_index=False))
    if not packed.cells:
        return 0
    own = connection is None
    conn = connection or sqlite3.connect(SqliteOnlineStore._get_db_path(store.config), timeout=60)
    try:
        if own:
            with conn:
                _write(conn, packed)
        else:
            _write(conn, packed)
    finally:
        if own:
            conn.close()
    return packed.cells


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

    def prepare(fv) -> tuple[int, _Packed]:
        latest = _read_latest(fv, start_ts, end_ts)
        return latest.num_rows, _pack(store, fv, latest)

    rows: dict[str, int] = {}
    cells = 0
    path = SqliteOnlineStore._get_db_path(store.config)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60)
    try:
        _prefer_larger_pages(conn)
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB, this connection only
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "delete":
            conn.execute("PRAGMA journal_mode = MEMORY")  # this connection only (DELETE is not persistent)
        selected.sort(key=lambda fv: len(fv.features))  # the smallest first: less wait before writing
        with conn, ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(prepare, selected[0]) if selected else None
            for i, fv in enumerate(selected):
                n_rows, packed = pending.result()
                pending = pool.submit(prepare, selected[i + 1]) if i + 1 < len(selected) else None
                _write(conn, packed)
                cells += packed.cells
                rows[fv.name] = n_rows
                del packed
    finally:
        conn.close()
    for fv in selected:
        store.registry.apply_materialization(fv, store.project, start_ts.to_pydatetime(),
                                             end_ts.to_pydatetime(), commit=False)
    store.registry.commit()
    return MaterializeReport(rows=rows, cells=cells, seconds=time.perf_counter() - began)
