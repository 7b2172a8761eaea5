"""Ingestion: raw channel events → validated, keyed, deduplicated lake events.

Every row read ends up in exactly one place: the lake (new), the duplicate count (event_id already seen),
or the quarantine file with a reason. Raw phones and e-mails are keyed here and never written anywhere,
quarantine included.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.privacy import key_identifier, mask_text, row_fingerprint
from features.schema import CHANNELS, EVENT_TYPES, ID_TYPES, LAKE_COLUMNS, PII_ID_TYPES, RAW_COLUMNS

LAKE_FILE = "events.parquet"
QUARANTINE_FILE = "quarantine.parquet"
# Validation order: a row is quarantined under the first reason that applies.
REASONS: tuple[str, ...] = (
    "malformed_json", "missing_event_id", "bad_ts", "future_ts", "unknown_channel", "unknown_event_type",
    "no_identifiers", "unknown_id_type", "bad_phone", "bad_email", "bad_amount",
)
PROPERTY_COLUMNS: tuple[str, ...] = tuple(LAKE_COLUMNS[5:])
_STRING_PROPERTIES = ("item_id", "category", "order_id", "touch_id", "action_id", "consent_channel", "purpose")
_AMOUNT_EVENTS = ("order", "conversion")
_QUARANTINE_COLUMNS = (
    "quarantine_id", "source_file", "row_number", "event_id", "ts", "channel", "event_type", "identifiers",
    "properties", "raw_masked", "reason", "ingested_at",
)
_FUTURE_TOLERANCE = pd.Timedelta(minutes=5)
_GRANTED = {True: True, False: False, "true": True, "false": False, "True": True, "False": False,
            "1": True, "0": False, "yes": True, "no": False}


@dataclass(frozen=True)
class IngestReport:
    """Counts of one ingestion run: rows_read = rows_kept + duplicates + sum(quarantined)."""

    rows_read: int
    rows_kept: int
    duplicates: int
    quarantined: dict[str, int] = field(default_factory=dict)

    @property
    def rows_quarantined(self) -> int:
        return int(sum(self.quarantined.values()))


# ---------------------------------------------------------------- reading
def _read_json_lines(path: Path) -> pd.DataFrame:
    records: list[dict] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            records.append({"_malformed": True, "_raw": line})
            continue
        row = {col: obj.get(col) for col in RAW_COLUMNS}
        for col in ("identifiers", "properties"):
            if isinstance(row[col], dict | list):
                row[col] = json.dumps(row[col])
        records.append(row)
    return pd.DataFrame.from_records(records, columns=[*RAW_COLUMNS, "_malformed", "_raw"])


def _read_one(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    elif suffix in (".jsonl", ".json", ".ndjson"):
        frame = _read_json_lines(path)
    else:
        raise ValueError(f"raw_files: unsupported file type {path.name!r} (parquet, csv, jsonl)")
    for col in (*RAW_COLUMNS, "_raw"):
        if col not in frame.columns:
            frame[col] = None
    frame["_malformed"] = frame["_malformed"].eq(True) if "_malformed" in frame.columns else False
    frame["_ts"] = _parse_ts(frame["ts"])
    frame["_source"] = path.name
    frame["_row"] = np.arange(len(frame))
    return frame[[*RAW_COLUMNS, "_ts", "_malformed", "_raw", "_source", "_row"]]


def _parse_ts(ts: pd.Series) -> pd.Series:
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        return ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(ts.dtype):
        return ts.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    text = ts.astype(object).where(ts.notna(), None)
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    return parsed.astype("datetime64[ns, UTC]")


# ---------------------------------------------------------------- parsing helpers
def _parse_object(text: object) -> dict | None:
    """JSON object text → dict; missing → {}; malformed or not an object → None."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return {}
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _memoised(func: Callable) -> Callable:
    cache: dict = {}

    def run(value):
        key = value if isinstance(value, str) else repr(value)
        if key not in cache:
            cache[key] = func(value)
        return cache[key]

    return run


def _identifier_keyer(salt: bytes) -> Callable[[object], tuple[str | None, str | None]]:
    """Raw identifiers JSON → (keyed identifiers JSON, None) or (None, reason)."""

    def key_row(text: object) -> tuple[str | None, str | None]:
        parsed = _parse_object(text)
        if parsed is None:
            return None, "malformed_json"
        present = {t: v for t, v in parsed.items() if v is not None and str(v).strip() != ""}
        if not present:
            return None, "no_identifiers"
        if any(t not in ID_TYPES for t in present):
            return None, "unknown_id_type"
        keyed = {}
        for id_type in sorted(present):
            key = key_identifier(id_type, present[id_type], salt)
            if key is None:
                return None, f"bad_{id_type}" if id_type in PII_ID_TYPES else "no_identifiers"
            keyed[id_type] = key
        return json.dumps(keyed, separators=(",", ":"), sort_keys=True), None

    return _memoised(key_row)


def _mask_identifiers(text: object, salt: bytes) -> str | None:
    """Identifiers of a quarantined row with nothing raw left: PII keyed or replaced, free text masked."""
    parsed = _parse_object(text)
    if parsed is None:
        return mask_text(text)
    masked = {}
    for id_type, value in parsed.items():
        if id_type in PII_ID_TYPES:
            masked[id_type] = key_identifier(id_type, value, salt) or "<invalid>"
        else:
            masked[mask_text(id_type)] = mask_text(value)
    return json.dumps(masked, separators=(",", ":"), sort_keys=True)


def _flatten_properties(props: list[dict]) -> pd.DataFrame:
    flat = pd.DataFrame.from_records(props, columns=list(PROPERTY_COLUMNS))
    for col in _STRING_PROPERTIES:
        values = flat[col]
        flat[col] = values.astype(object).where(values.isna(), values.astype(str))
    flat["amount"] = pd.to_numeric(flat["amount"], errors="coerce").astype("float64")
    flat["granted"] = flat["granted"].map(lambda v: _GRANTED.get(v, pd.NA) if _hashable(v) else pd.NA)
    flat["granted"] = flat["granted"].astype("boolean")
    return flat


def _hashable(value: object) -> bool:
    return not isinstance(value, dict | list)


# ---------------------------------------------------------------- validation
def _validate(frame: pd.DataFrame, salt: bytes, now: pd.Timestamp) -> tuple[pd.Series, pd.DataFrame]:
    """Return the reason per row (None = valid) and the lake-shaped frame for all rows."""
    n = len(frame)
    reason = pd.Series([None] * n, index=frame.index, dtype=object)

    def flag(mask: pd.Series | np.ndarray, name: str) -> None:
        reason[np.asarray(mask) & reason.isna().to_numpy()] = name

    keyer = _identifier_keyer(salt)
    keyed = [keyer(v) for v in frame["identifiers"].to_numpy()]
    ids_json = pd.Series([k[0] for k in keyed], index=frame.index, dtype=object)
    ids_reason = pd.Series([k[1] for k in keyed], index=frame.index, dtype=object)

    parse_props = _memoised(_parse_object)
    props = [parse_props(v) for v in frame["properties"].to_numpy()]
    props_bad = np.array([p is None for p in props], dtype=bool)
    flat = _flatten_properties([p if p is not None else {} for p in props])
    flat.index = frame.index

    event_id = frame["event_id"].astype(object).where(frame["event_id"].notna(), None)
    event_id = event_id.map(lambda v: str(v).strip() if v is not None else None)
    channel = frame["channel"].astype(object)
    event_type = frame["event_type"].astype(object)
    ts = frame["_ts"]

    flag(frame["_malformed"].to_numpy() | props_bad | ids_reason.eq("malformed_json").to_numpy(),
         "malformed_json")
    flag(event_id.isna() | event_id.eq(""), "missing_event_id")
    flag(ts.isna(), "bad_ts")
    flag(ts > now + _FUTURE_TOLERANCE, "future_ts")
    flag(~channel.isin(CHANNELS), "unknown_channel")
    flag(~event_type.isin(EVENT_TYPES), "unknown_event_type")
    for name in ("no_identifiers", "unknown_id_type", "bad_phone", "bad_email"):
        flag(ids_reason.eq(name), name)
    amount = flat["amount"]
    bad_amount = amount.isna() | ~np.isfinite(amount.fillna(0.0)) | (amount < 0)
    flag(event_type.isin(_AMOUNT_EVENTS) & bad_amount, "bad_amount")

    lake = pd.DataFrame({
        "event_id": event_id, "ts": ts, "channel": channel, "event_type": event_type,
        "identifiers": ids_json,
    })
    lake = pd.concat([lake, flat], axis=1)[list(LAKE_COLUMNS)]
    return reason, lake


def _quarantine_frame(frame: pd.DataFrame, reason: pd.Series, salt: bytes, now: pd.Timestamp) -> pd.DataFrame:
    rows = frame[reason.notna()]
    if rows.empty:
        return pd.DataFrame(columns=_QUARANTINE_COLUMNS)
    content = (rows["_source"].astype(str) + "|" + rows["_row"].astype(str) + "|"
               + rows[list(RAW_COLUMNS)].astype(str).agg("|".join, axis=1) + "|" + rows["_raw"].astype(str))
    return pd.DataFrame({
        "quarantine_id": [row_fingerprint(c, salt) for c in content],
        "source_file": rows["_source"].astype(str),
        "row_number": rows["_row"].astype("int64"),
        "event_id": rows["event_id"].map(lambda v: None if v is None or v != v else mask_text(v)),
        "ts": rows["ts"].map(lambda v: None if v is None or v is pd.NaT or v != v else str(v)),
        "channel": rows["channel"].map(mask_text),
        "event_type": rows["event_type"].map(mask_text),
        "identifiers": rows["identifiers"].map(lambda v: _mask_identifiers(v, salt)),
        "properties": rows["properties"].map(mask_text),
        "raw_masked": rows["_raw"].map(mask_text),
        "reason": reason[reason.notna()].astype(str),
        "ingested_at": now,
    }).reset_index(drop=True)


# ---------------------------------------------------------------- writing
def _cast_lake(lake: pd.DataFrame) -> pd.DataFrame:
    lake = lake.copy()
    for col in ("event_id", "channel", "event_type", "identifiers", *_STRING_PROPERTIES):
        lake[col] = lake[col].astype(object)
    lake["ts"] = lake["ts"].astype("datetime64[ns, UTC]")
    lake["amount"] = lake["amount"].astype("float64")
    lake["granted"] = lake["granted"].astype("boolean")
    return lake[list(LAKE_COLUMNS)]


def read_lake(lake_dir: Path) -> pd.DataFrame:
    """The lake events (LAKE_COLUMNS, ts UTC, sorted by ts); empty frame when nothing was ingested."""
    path = Path(lake_dir) / LAKE_FILE
    if not path.exists():
        empty = pd.DataFrame({col: pd.Series(dtype=object) for col in LAKE_COLUMNS})
        return _cast_lake(empty)
    return _cast_lake(pd.read_parquet(path))


def _merge_quarantine(quarantine_dir: Path, rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    path = quarantine_dir / QUARANTINE_FILE
    if path.exists():
        existing = pd.read_parquet(path)
        rows = rows[~rows["quarantine_id"].isin(existing["quarantine_id"])]
        if rows.empty:
            return
        rows = pd.concat([existing, rows], ignore_index=True)
    rows.to_parquet(path, index=False)


def ingest(raw_files: list[Path], lake_dir: Path, quarantine_dir: Path, salt: bytes,
           now: pd.Timestamp | None = None) -> IngestReport:
    """Validate, key and deduplicate raw event files into ``lake_dir/events.parquet``.

    ``now`` (UTC) bounds event times: later rows are quarantined as ``future_ts``. Re-ingesting the same
    files changes neither the lake nor the quarantine file.
    """
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    lake_dir, quarantine_dir = Path(lake_dir), Path(quarantine_dir)
    frames = [_read_one(Path(p)) for p in raw_files]
    frame = pd.concat(frames, ignore_index=True) if frames else _read_empty()
    reason, lake = _validate(frame, salt, now)

    valid = lake[reason.isna()]
    existing = read_lake(lake_dir)
    duplicate = valid["event_id"].duplicated(keep="first") | valid["event_id"].isin(existing["event_id"])
    new_rows = _cast_lake(valid[~duplicate])
    if len(new_rows) or not (lake_dir / LAKE_FILE).exists():
        lake_dir.mkdir(parents=True, exist_ok=True)
        merged = pd.concat([existing, new_rows], ignore_index=True) if len(existing) else new_rows
        merged = merged.sort_values(["ts", "event_id"], kind="stable").reset_index(drop=True)
        merged.to_parquet(lake_dir / LAKE_FILE, index=False)

    _merge_quarantine(quarantine_dir, _quarantine_frame(frame, reason, salt, now))
    counts = reason.dropna().value_counts()
    return IngestReport(
        rows_read=int(len(frame)),
        rows_kept=int(len(new_rows)),
        duplicates=int(duplicate.sum()),
        quarantined={str(k): int(v) for k, v in counts.items()},
    )


def _read_empty() -> pd.DataFrame:
    frame = pd.DataFrame({col: pd.Series(dtype=object) for col in RAW_COLUMNS})
    frame["_ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["_malformed"] = pd.Series(dtype=bool)
    frame["_raw"] = pd.Series(dtype=object)
    frame["_source"] = pd.Series(dtype=object)
    frame["_row"] = pd.Series(dtype="int64")
    return frame
