"""Each channel's system writes its own file format: the world's raw files, one folder per channel.

``raw/<channel>/date=YYYY-MM-DD/part-NNNNN.<ext>``, partitioned by the day an event *arrived* (late events
land in a later day's file). Formats differ on purpose: column names, time encodings (UTC ISO, +08:00
offsets, epoch seconds, naive Shanghai local time, parquet timestamps) and amount spellings ("¥1,299.00").
The product reads them with ``features.adapters``; this module is the outside world's side of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.catalog import CHANNELS, EVENT_TYPES, ID_TYPES
from simulator.events import PROPS

_FLAT_PROPS = PROPS
_LOCAL = pd.Timedelta(hours=8)  # China Standard Time, no daylight saving


@dataclass(frozen=True)
class ChannelFormat:
    ext: str
    event_id: str
    ts: str
    ts_style: str      # iso_utc | iso_offset | epoch_s | local_naive | timestamp
    event_type: str
    ids: dict[str, str]  # identifier type -> column
    amount_style: str = "number"  # number | string | yuan
    nested_props: str | None = None
    extra: tuple[str, ...] = field(default=())


FORMATS: dict[str, ChannelFormat] = {
    "web": ChannelFormat("jsonl", "eid", "time", "iso_offset", "event",
                         {"cookie_id": "cookie_id", "member_id": "member_id", "email": "email", "phone": "phone"},
                         nested_props="props"),
    "app": ChannelFormat("parquet", "event_uuid", "client_ts", "timestamp", "event_name",
                         {"device_id": "device_id", "member_id": "user_id", "phone": "phone"}),
    "mini_program": ChannelFormat("jsonl", "msg_id", "create_time", "epoch_s", "event",
                                  {"wechat_openid": "openid", "wechat_unionid": "unionid", "phone": "phone",
                                   "member_id": "member_id"}),
    "wechat_oa": ChannelFormat("jsonl", "msg_id", "create_time", "epoch_s", "event",
                               {"wechat_openid": "openid", "wechat_unionid": "unionid", "phone": "phone",
                                "member_id": "member_id"}),
    "sms": ChannelFormat("csv", "log_id", "sent_at", "iso_utc", "event", {"phone": "phone", "member_id": "member_id"},
                         amount_style="string"),
    "email": ChannelFormat("csv", "log_id", "sent_at", "iso_utc", "event", {"email": "email", "member_id": "member_id"},
                           amount_style="string"),
    "paid_ads": ChannelFormat("csv", "click_id", "click_time", "iso_utc", "event", {"cookie_id": "cookie"},
                              amount_style="string"),
    "pos": ChannelFormat("csv", "txn_id", "txn_time", "local_naive", "txn_type",
                         {"phone": "mobile", "pos_card": "card_no", "member_id": "member_no"}, amount_style="yuan",
                         extra=("store_id",)),
    "guide": ChannelFormat("csv", "record_id", "ts", "iso_offset", "action",
                           {"device_id": "terminal_id", "member_id": "member_no", "phone": "phone"},
                           amount_style="string", extra=("store_id",)),
}


def _times(ts: pd.Series, style: str):
    utc = ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]")
    if style == "timestamp":
        return ts.to_numpy()
    if style == "epoch_s":
        return utc.astype(np.int64)
    if style == "iso_utc":
        return np.char.add(np.datetime_as_string(utc, unit="s"), "Z").astype(object)
    local = np.datetime_as_string(utc + np.timedelta64(8, "h"), unit="s")
    if style == "iso_offset":
        return np.char.add(local, "+08:00").astype(object)
    return np.char.replace(local, "T", " ").astype(object)  # local_naive


def _amounts(values: np.ndarray, style: str, rng_bits: np.ndarray):
    present = pd.notna(values)
    number = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()
    if style == "number":
        return number
    out = np.full(len(values), None, dtype=object)
    if style == "string":
        out[present] = values[present]
        return out
    idx = np.flatnonzero(present)
    for i in idx:  # "¥1,299.00" or "1299.00", as tills print them
        out[i] = f"¥{number[i]:,.2f}" if rng_bits[i] else f"{number[i]:.2f}"
    return out


def render(table: pd.DataFrame, channel: str) -> pd.DataFrame:
    """The rows of ``table`` (one channel) as that channel's system writes them."""
    fmt = FORMATS[channel]
    lost = [t for t in ID_TYPES if t not in fmt.ids and table[f"id_{t}"].notna().any()]
    if lost:
        raise ValueError(f"channel {channel!r} format has no column for identifiers {lost}")
    out = {fmt.event_id: table["event_id"].to_numpy(), fmt.ts: _times(table["ts"], fmt.ts_style),
           fmt.event_type: np.array(EVENT_TYPES, dtype=object)[table["etype"].to_numpy()]}
    for id_type, col in fmt.ids.items():
        out[col] = table[f"id_{id_type}"].to_numpy()
    if "store_id" in fmt.extra:
        out["store_id"] = np.array([f"S{s:04d}" for s in table["store"].to_numpy()], dtype=object)
    bits = (pd.util.hash_array(table["event_id"].to_numpy()) & 1).astype(bool)
    props = {k: table[f"p_{k}"].to_numpy() for k in _FLAT_PROPS}
    props["amount"] = _amounts(props["amount"], fmt.amount_style, bits)
    if fmt.amount_style == "number":
        props["logging_propensity"] = pd.to_numeric(pd.Series(props["logging_propensity"])).to_numpy()
        granted = props["granted"]
        props["granted"] = pd.array([None if g is None else g == "true" for g in granted], dtype="boolean")
    if fmt.nested_props:
        keys = list(props)
        cols = [props[k] for k in keys]
        out[fmt.nested_props] = [
            {k: (v.item() if isinstance(v, np.generic) else v) for k, v in zip(keys, row, strict=True)
             if v is not None and v is not pd.NA and not (isinstance(v, float) and np.isnan(v))}
            for row in zip(*cols, strict=True)]
    else:
        out.update(props)
    return pd.DataFrame(out)


def _write(frame: pd.DataFrame, path: Path, ext: str) -> None:
    if ext == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def write_channel_files(table: pd.DataFrame, raw_dir: Path, start: pd.Timestamp, part: int) -> int:
    """Write ``table`` (events with ``arrival_ts``) as per-channel, per-arrival-day files; returns the count."""
    files = 0
    day = table["arrival_ts"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    channel_codes = table["channel"].to_numpy()
    for c in np.unique(channel_codes):
        channel = CHANNELS[int(c)]
        fmt = FORMATS[channel]
        idx = np.flatnonzero(channel_codes == c)
        rendered = render(table.iloc[idx], channel)
        order = np.argsort(day[idx], kind="stable")
        days_sorted = day[idx][order]
        firsts = np.flatnonzero(np.r_[True, days_sorted[1:] != days_sorted[:-1]])
        bounds = np.r_[firsts, len(order)]
        lines = (np.array(rendered.to_json(orient="records", lines=True, force_ascii=False,
                                           date_format="iso").splitlines(), dtype=object)
                 if fmt.ext == "jsonl" else None)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            folder = Path(raw_dir) / channel / f"date={days_sorted[lo]}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"part-{part:05d}.{fmt.ext}"
            rows = order[lo:hi]
            if lines is not None:
                path.write_text("\n".join(lines[rows]) + "\n", encoding="utf-8")
            else:
                _write(rendered.iloc[rows], path, fmt.ext)
            files += 1
    return files
