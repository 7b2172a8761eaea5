"""Ingestion: raw channel events → validated, keyed, deduplicated lake events.

Every row read ends up in exactly one place: the lake (new), the duplicate count (event_id already seen),
or the quarantine file with a reason. Raw phones and e-mails are keyed here and never written anywhere,
quarantine included.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.adapters import PROPERTY_KEYS, iter_wide
from features.contract import validate_sample
from features.privacy import key_identifier, mask_text, row_fingerprint
from features.schema import CHANNELS, EVENT_TYPES, ID_TYPES, LAKE_COLUMNS, PII_ID_TYPES

LAKE_FILE = "events.parquet"  # the single-file layout of earlier versions, still read
LAKE_DIR = "events"
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


def _mask_identifiers(text: object, salt: bytes) -> str | None:
    """Identifiers of a quarantined row with nothing raw left: PII keyed or replaced, free text masked."""
    try:
        parsed = json.loads(text)
    except (TypeError, ValueError):
        parsed = None
    if not isinstance(parsed, dict):
        return mask_text(text)
    masked = {}
    for id_type, value in parsed.items():
        if id_type in PII_ID_TYPES:
            masked[id_type] = key_identifier(id_type, value, salt) or "<invalid>"
        else:
            masked[mask_text(id_type)] = mask_text(value)
    return json.dumps(masked, separators=(",", ":"), sort_keys=True)


def _keyed(values: pd.Series, id_type: str, salt: bytes) -> pd.Series:
    """Key one identifier column (None stays None; malformed PII → the marker ``"!bad"``), per unique value."""
    present = values.dropna()
    uniques = pd.unique(present)
    keys = {v: key_identifier(id_type, v, salt) or "!bad" for v in uniques}
    return values.map(keys).where(values.notna(), None)


def _identifiers_json(keyed: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    acc = pd.Series("", index=index, dtype=object)
    for id_type in sorted(keyed):
        col = keyed[id_type]
        has = col.notna().to_numpy()
        if not has.any():
            continue
        text = col.fillna("").str.replace("\\", "\\\\", regex=False).str.replace('"', '\\"', regex=False)
        sep = np.where(acc.str.len().to_numpy() > 0, ",", "")
        acc = acc.where(~has, acc + sep + f'"{id_type}":"' + text + '"')
    return "{" + acc + "}"


def parse_amount(values: pd.Series) -> pd.Series:
    """Amount text as tills and logs spell it ("¥1,299.00", "1299.00", " 12.5 ") → float (NaN if not)."""
    text = values.astype(object).where(values.notna(), None).astype("string")
    text = text.str.strip().str.replace("¥", "", regex=False).str.replace("￥", "", regex=False)
    text = text.str.replace(",", "", regex=False).str.strip()
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _validate(wide: pd.DataFrame, salt: bytes, now: pd.Timestamp) -> tuple[pd.Series, pd.DataFrame]:
    """Return the reason per row (None = valid) and the lake-shaped frame for all rows (vectorised)."""
    reason = wide["_reason"].astype(object).copy()

    def flag(mask, name: str) -> None:
        reason[np.asarray(mask, dtype=bool) & reason.isna().to_numpy()] = name

    keyed = {t: _keyed(wide[f"id_{t}"], t, salt) for t in ID_TYPES}
    any_id = np.logical_or.reduce([k.notna().to_numpy() for k in keyed.values()])
    event_id, ts = wide["event_id"], wide["ts"]
    event_type = wide["event_type"]
    amount = parse_amount(wide["amount"])
    bad_amount = amount.isna() | ~np.isfinite(amount.fillna(0.0)) | (amount < 0)

    flag(event_id.isna(), "missing_event_id")
    flag(ts.isna(), "bad_ts")
    flag(ts > now + _FUTURE_TOLERANCE, "future_ts")
    flag(~wide["channel"].isin(CHANNELS), "unknown_channel")
    flag(~event_type.isin(EVENT_TYPES), "unknown_event_type")
    flag(~any_id, "no_identifiers")
    for id_type in PII_ID_TYPES:
        flag(keyed[id_type].eq("!bad").to_numpy(), f"bad_{id_type}")
    flag(event_type.isin(_AMOUNT_EVENTS) & bad_amount, "bad_amount")

    valid = reason.isna().to_numpy()
    good = {t: k.where(valid, None) for t, k in keyed.items()}
    granted = wide["granted"].map(lambda v: _GRANTED.get(v, pd.NA) if v is not None else pd.NA)
    lake = pd.DataFrame({
        "event_id": event_id, "ts": ts, "channel": wide["channel"], "event_type": event_type,
        "identifiers": _identifiers_json(good, wide.index),
        **{c: wide[c] for c in _STRING_PROPERTIES}, "amount": amount, "granted": granted.astype("boolean"),
    })
    return reason, lake[list(LAKE_COLUMNS)]


def _quarantine_frame(wide: pd.DataFrame, reason: pd.Series, salt: bytes, now: pd.Timestamp) -> pd.DataFrame:
    rows = wide[reason.notna()]
    if rows.empty:
        return pd.DataFrame(columns=_QUARANTINE_COLUMNS)
    ids = [json.dumps({t: v for t, v in zip(ID_TYPES, r, strict=True) if v is not None})
           for r in rows[[f"id_{t}" for t in ID_TYPES]].to_numpy()]
    props = [json.dumps({k: v for k, v in zip(PROPERTY_KEYS, r, strict=True) if v is not None})
             for r in rows[list(PROPERTY_KEYS)].to_numpy()]
    content = (rows["_source"].astype(str) + "|" + rows["_row"].astype(str) + "|" + rows["event_id"].astype(str)
               + "|" + pd.Series(ids, index=rows.index) + "|" + rows["_raw"].astype(str))
    return pd.DataFrame({
        "quarantine_id": [row_fingerprint(c, salt) for c in content],
        "source_file": rows["_source"].map(lambda v: Path(v).name),
        "row_number": rows["_row"].astype("int64"),
        "event_id": rows["event_id"].map(lambda v: None if v is None else mask_text(v)),
        "ts": rows["ts"].map(lambda v: None if v is pd.NaT or v != v else str(v)),
        "channel": rows["channel"].map(mask_text),
        "event_type": rows["event_type"].map(mask_text),
        "identifiers": [_mask_identifiers(v, salt) for v in ids],
        "properties": [mask_text(v) for v in props],
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


def _partition_files(lake_dir: Path) -> list[Path]:
    files = sorted((Path(lake_dir) / LAKE_DIR).glob("date=*/*.parquet"))
    legacy = Path(lake_dir) / LAKE_FILE
    return [legacy, *files] if legacy.exists() else files


def read_lake(lake_dir: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The lake events (LAKE_COLUMNS, ts UTC, sorted by ts then event_id); empty when nothing was ingested.

    Reads every date partition (``lake/events/date=YYYY-MM-DD/*.parquet``).
    """
    files = _partition_files(lake_dir)
    if not files:
        empty = pd.DataFrame({col: pd.Series(dtype=object) for col in LAKE_COLUMNS})
        return _cast_lake(empty)
    frame = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    frame = _cast_lake(frame).sort_values(["ts", "event_id"], kind="stable").reset_index(drop=True)
    return frame if columns is None else frame[columns]


def _existing_ids(lake_dir: Path, dates: np.ndarray) -> set[str]:
    ids: set[str] = set()
    for d in dates:
        for p in sorted((Path(lake_dir) / LAKE_DIR / f"date={d}").glob("*.parquet")):
            ids.update(pd.read_parquet(p, columns=["event_id"])["event_id"])
    legacy = Path(lake_dir) / LAKE_FILE
    if legacy.exists():
        ids.update(pd.read_parquet(legacy, columns=["event_id"])["event_id"])
    return ids


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
           now: pd.Timestamp | None = None, batch_rows: int = 500_000) -> IngestReport:
    """Validate, key and deduplicate raw files (any channel format) into the date-partitioned lake.

    Files are read through :mod:`features.adapters` in batches of about ``batch_rows`` rows, so memory
    stays bounded. ``now`` (UTC) bounds event times: later rows are quarantined as ``future_ts``.
    Re-ingesting the same files changes neither the lake nor the quarantine file.
    """
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    lake_dir, quarantine_dir = Path(lake_dir), Path(quarantine_dir)
    rows_read = kept = duplicates = 0
    counts: dict[str, int] = {}
    quarantined: list[pd.DataFrame] = []
    for wide in iter_wide([Path(p) for p in raw_files], batch_rows):
        reason, lake = _validate(wide, salt, now)
        rows_read += len(wide)
        for k, v in reason.dropna().value_counts().items():
            counts[str(k)] = counts.get(str(k), 0) + int(v)
        quarantined.append(_quarantine_frame(wide, reason, salt, now))
        valid = _cast_lake(lake[reason.isna().to_numpy()])
        validate_sample(valid)
        date = valid["ts"].dt.strftime("%Y-%m-%d")
        seen = _existing_ids(lake_dir, date.unique())
        duplicate = valid["event_id"].duplicated(keep="first") | valid["event_id"].isin(seen)
        duplicates += int(duplicate.sum())
        new_rows = valid[~duplicate.to_numpy()]
        kept += len(new_rows)
        _write_partitions(new_rows, date[~duplicate.to_numpy()], lake_dir)
    _merge_quarantine(quarantine_dir, pd.concat(quarantined, ignore_index=True) if quarantined
                      else pd.DataFrame(columns=_QUARANTINE_COLUMNS))
    return IngestReport(rows_read=rows_read, rows_kept=kept, duplicates=duplicates,
                        quarantined=dict(sorted(counts.items())))


def _write_partitions(rows: pd.DataFrame, date: pd.Series, lake_dir: Path) -> None:
    """One new file per date partition, named by a digest of its event ids (a rerun writes nothing new)."""
    for d, part in rows.groupby(date.to_numpy(), sort=True):
        part = part.sort_values(["ts", "event_id"], kind="stable").reset_index(drop=True)
        digest = hashlib.sha1("\n".join(part["event_id"]).encode("utf-8")).hexdigest()[:16]
        folder = lake_dir / LAKE_DIR / f"date={d}"
        folder.mkdir(parents=True, exist_ok=True)
        part.to_parquet(folder / f"part-{digest}.parquet", index=False)


__all__ = ["QUARANTINE_FILE", "REASONS", "IngestReport", "ingest", "parse_amount", "read_lake"]
