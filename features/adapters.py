"""Adapters: each channel's raw file format → one wide frame of raw events (the input of validation).

A raw file is found under ``raw/<channel>/...`` (CSV, JSON lines or parquet in that channel system's own
column names, time encoding and amount spelling) or is a canonical raw-events file (``RAW_COLUMNS`` with
JSON ``identifiers``/``properties``, any other place). Adapters only rename and parse; they never drop a
row: unreadable lines come out flagged ``malformed_json`` so ingestion can quarantine them with a reason.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from features.schema import CHANNELS, ID_TYPES, RAW_COLUMNS

SUFFIXES: tuple[str, ...] = (".parquet", ".csv", ".jsonl", ".ndjson", ".json")
PROPERTY_KEYS: tuple[str, ...] = (
    "item_id", "category", "amount", "order_id", "touch_id", "action_id", "consent_channel", "purpose", "granted",
)
ID_COLUMNS: tuple[str, ...] = tuple(f"id_{t}" for t in ID_TYPES)
# wide frame: parsed ts (UTC, NaT when missing/unparseable), raw identifier and property values as text
WIDE_COLUMNS: tuple[str, ...] = (
    "event_id", "ts", "channel", "event_type", *ID_COLUMNS, *PROPERTY_KEYS, "_reason", "_raw", "_source", "_row",
)
SHANGHAI = "Asia/Shanghai"


@dataclass(frozen=True)
class ChannelFormat:
    """How one channel's system writes events (mirrors what the brand's systems export)."""

    ext: str
    event_id: str
    ts: str
    ts_style: str      # iso_utc | iso_offset | epoch_s | local_naive (Shanghai time) | timestamp
    event_type: str
    ids: dict[str, str]  # identifier type -> column
    nested_props: str | None = None


_WECHAT = {"wechat_openid": "openid", "wechat_unionid": "unionid", "phone": "phone", "member_id": "member_id"}
FORMATS: dict[str, ChannelFormat] = {
    "web": ChannelFormat("jsonl", "eid", "time", "iso_offset", "event",
                         {"cookie_id": "cookie_id", "member_id": "member_id", "email": "email", "phone": "phone"},
                         nested_props="props"),
    "app": ChannelFormat("parquet", "event_uuid", "client_ts", "timestamp", "event_name",
                         {"device_id": "device_id", "member_id": "user_id", "phone": "phone"}),
    "mini_program": ChannelFormat("jsonl", "msg_id", "create_time", "epoch_s", "event", _WECHAT),
    "wechat_oa": ChannelFormat("jsonl", "msg_id", "create_time", "epoch_s", "event", _WECHAT),
    "sms": ChannelFormat("csv", "log_id", "sent_at", "iso_utc", "event", {"phone": "phone", "member_id": "member_id"}),
    "email": ChannelFormat("csv", "log_id", "sent_at", "iso_utc", "event", {"email": "email", "member_id": "member_id"}),
    "paid_ads": ChannelFormat("csv", "click_id", "click_time", "iso_utc", "event", {"cookie_id": "cookie"}),
    "pos": ChannelFormat("csv", "txn_id", "txn_time", "local_naive", "txn_type",
                         {"phone": "mobile", "pos_card": "card_no", "member_id": "member_no"}),
    "guide": ChannelFormat("csv", "record_id", "ts", "iso_offset", "action",
                           {"device_id": "terminal_id", "member_id": "member_no", "phone": "phone"}),
}


def raw_sources(raw_dir: Path | str) -> list[Path]:
    """Every raw file under ``raw_dir`` (any depth), in a stable order: channel folders, then dates."""
    root = Path(raw_dir)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def channel_of(path: Path) -> str | None:
    """The channel whose folder holds ``path`` (nearest ancestor named like a channel), else None."""
    for part in reversed(Path(path).parent.parts):
        if part in FORMATS:
            return part
    return None


# ---------------------------------------------------------------- low-level readers
def _json_lines(path: Path) -> pd.DataFrame:
    """Records of a JSON-lines file; a line that is not a JSON object becomes a row flagged malformed."""
    records: list[dict] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            records.append({**obj, "_line": number})
        else:
            records.append({"_reason": "malformed_json", "_raw": line, "_line": number})
    return pd.DataFrame.from_records(records)


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), [])
        if not header:
            return pd.DataFrame()
        options = pacsv.ConvertOptions(column_types={name: pa.string() for name in header},
                                       strings_can_be_null=True, null_values=[""])
        return pacsv.read_csv(path, convert_options=options).to_pandas()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _json_lines(path)
    raise ValueError(f"path: unsupported file type {path.name!r} (parquet, csv, jsonl)")


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped text (vectorised); missing, NaN and empty → None; nested objects → JSON text."""
    if values.dtype == object:
        nested = values.map(lambda v: isinstance(v, dict | list)).to_numpy(dtype=bool)
        if nested.any():
            values = values.copy()
            values[nested] = values[nested].map(json.dumps)
    text = values.astype("string").str.strip()
    text = text.mask(text.eq(""))
    return text.astype(object).where(text.notna(), None)


def parse_ts(values: pd.Series, style: str = "iso_utc") -> pd.Series:
    """Timestamps in a channel's encoding → UTC (NaT where missing or unparseable)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    if style == "epoch_s":
        number = pd.to_numeric(values, errors="coerce")
        return pd.to_datetime(number, unit="s", utc=True).astype("datetime64[ns, UTC]")
    text = _text(values)
    if style == "local_naive":
        naive = pd.to_datetime(text, errors="coerce", format="ISO8601")
        if isinstance(naive.dtype, pd.DatetimeTZDtype):
            return naive.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        return naive.dt.tz_localize(SHANGHAI, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC") \
            .astype("datetime64[ns, UTC]")
    return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601").astype("datetime64[ns, UTC]")


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series([None] * len(frame), index=frame.index, dtype=object)


# ---------------------------------------------------------------- adapters
def _from_channel(frame: pd.DataFrame, channel: str) -> pd.DataFrame:
    fmt = FORMATS[channel]
    out = pd.DataFrame(index=frame.index)
    out["event_id"] = _text(_column(frame, fmt.event_id))
    out["ts"] = parse_ts(_column(frame, fmt.ts), fmt.ts_style)
    out["channel"] = channel
    out["event_type"] = _text(_column(frame, fmt.event_type))
    for id_type in ID_TYPES:
        col = fmt.ids.get(id_type)
        out[f"id_{id_type}"] = _text(_column(frame, col)) if col else None
    if fmt.nested_props:
        nested = _column(frame, fmt.nested_props).map(lambda v: v if isinstance(v, dict) else {})
        props = pd.DataFrame.from_records(list(nested), index=frame.index, columns=list(PROPERTY_KEYS))
    else:
        props = frame
    for key in PROPERTY_KEYS:
        out[key] = _text(_column(props, key))
    out["_reason"] = _column(frame, "_reason")
    out["_raw"] = _column(frame, "_raw")
    return out


def _from_canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """RAW_COLUMNS rows with JSON identifiers/properties (the canonical feed, e.g. raw/events.parquet)."""
    out = pd.DataFrame(index=frame.index)
    out["event_id"] = _text(_column(frame, "event_id"))
    out["ts"] = parse_ts(_column(frame, "ts"))
    out["channel"] = _text(_column(frame, "channel"))
    out["event_type"] = _text(_column(frame, "event_type"))
    reason = _column(frame, "_reason").astype(object).copy()
    cache: dict[str, object] = {}

    def parse(text):
        if text is None or (isinstance(text, float) and math.isnan(text)):
            return {}
        if isinstance(text, dict):
            return text
        key = str(text)
        if key not in cache:
            try:
                value = json.loads(key)
            except ValueError:
                value = None
            cache[key] = value if isinstance(value, dict) else None
        return cache[key]

    ids = [parse(v) for v in _column(frame, "identifiers").to_numpy()]
    props = [parse(v) for v in _column(frame, "properties").to_numpy()]
    bad = np.array([i is None or p is None for i, p in zip(ids, props, strict=True)], dtype=bool)
    unknown = np.array([i is not None and any(k not in ID_TYPES for k, v in i.items()
                                              if v is not None and str(v).strip())
                        for i in ids], dtype=bool)
    reason[bad & reason.isna().to_numpy()] = "malformed_json"
    reason[unknown & reason.isna().to_numpy()] = "unknown_id_type"
    ids_frame = pd.DataFrame.from_records([i or {} for i in ids], index=frame.index, columns=list(ID_TYPES))
    props_frame = pd.DataFrame.from_records([p or {} for p in props], index=frame.index,
                                            columns=list(PROPERTY_KEYS))
    for id_type in ID_TYPES:
        out[f"id_{id_type}"] = _text(ids_frame[id_type])
    for key in PROPERTY_KEYS:
        out[key] = _text(props_frame[key])
    out["_reason"] = reason
    out["_raw"] = _column(frame, "_raw")
    return out


def _load(path: Path) -> tuple[str | None, pd.DataFrame]:
    frame = _read_table(path).reset_index(drop=True)
    rows = frame["_line"].astype("int64") if "_line" in frame.columns else pd.Series(np.arange(len(frame)))
    frame["_source"] = str(path)
    frame["_row"] = rows.to_numpy()
    return channel_of(path), frame


def _adapt(loaded: list[tuple[str | None, pd.DataFrame]]) -> pd.DataFrame:
    """Frames of one batch → WIDE_COLUMNS; files of one channel are adapted together (one pass each)."""
    parts = []
    for channel in dict.fromkeys(c for c, _ in loaded):
        frames = [f for c, f in loaded if c == channel]
        frame = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
        wide = _from_channel(frame, channel) if channel else _from_canonical(frame)
        wide["_source"] = frame["_source"].to_numpy()
        wide["_row"] = frame["_row"].to_numpy().astype("int64")
        parts.append(wide)
    if not parts:
        return empty_wide()
    wide = pd.concat(parts, ignore_index=True)
    wide["channel"] = wide["channel"].astype(object)
    return wide[list(WIDE_COLUMNS)]


def read_wide(path: Path | str) -> pd.DataFrame:
    """One raw file → WIDE_COLUMNS (every row of the file, in file order)."""
    return _adapt([_load(Path(path))])


def empty_wide() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in WIDE_COLUMNS})
    frame["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["_row"] = pd.Series(dtype="int64")
    return frame


def iter_wide(paths: Iterable[Path | str], batch_rows: int = 500_000):
    """Wide frames of about ``batch_rows`` rows, whole files at a time (memory bounded by the batch)."""
    pending: list[tuple[str | None, pd.DataFrame]] = []
    size = 0
    for path in paths:
        pending.append(_load(Path(path)))
        size += len(pending[-1][1])
        if size >= batch_rows:
            yield _adapt(pending)
            pending, size = [], 0
    if pending:
        yield _adapt(pending)


def read_raw(paths: Iterable[Path | str]) -> pd.DataFrame:
    """Raw events of any formats as RAW_COLUMNS with *raw* identifiers (evaluation and demo only).

    ``identifiers`` and ``properties`` are JSON objects of the values as the channel logged them.
    """
    frames = list(iter_wide(paths, batch_rows=10**9))
    wide = frames[0] if frames else empty_wide()
    wide = wide[wide["_reason"].isna()]
    ids = wide[list(ID_COLUMNS)].to_numpy()
    props = wide[list(PROPERTY_KEYS)].to_numpy()
    id_json = [json.dumps({t: v for t, v in zip(ID_TYPES, row, strict=True) if v is not None}) for row in ids]
    prop_json = [json.dumps({k: v for k, v in zip(PROPERTY_KEYS, row, strict=True) if v is not None})
                 for row in props]
    return pd.DataFrame({
        "event_id": wide["event_id"].to_numpy(), "ts": wide["ts"].to_numpy(), "channel": wide["channel"].to_numpy(),
        "event_type": wide["event_type"].to_numpy(), "identifiers": id_json, "properties": prop_json,
    })[list(RAW_COLUMNS)].reset_index(drop=True)


__all__ = [
    "CHANNELS", "FORMATS", "ID_COLUMNS", "PROPERTY_KEYS", "WIDE_COLUMNS", "ChannelFormat", "channel_of",
    "empty_wide", "iter_wide", "parse_ts", "raw_sources", "read_raw", "read_wide",
]
