"""No raw phone number or e-mail reaches the lake, the feature store, MLflow, the decision log or the logs."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import httpx
import pandas as pd
import pytest

from features.adapters import raw_sources, read_raw
from features.privacy import normalise_email, normalise_phone

pytestmark = pytest.mark.integration

PRODUCT_STATE = ("lake", "quarantine", "identity", "features", "feast", "mlflow", "logs")


def _raw_pii(settings) -> tuple[set[str], set[str]]:
    raw = read_raw(raw_sources(settings.raw_dir))
    phones, emails = set(), set()
    for s in raw["identifiers"]:
        ids = json.loads(s)
        if ids.get("phone"):
            phones.add(normalise_phone(ids["phone"])[-11:])  # the 11 national digits
        if ids.get("email"):
            emails.add(normalise_email(ids["email"]))
    return phones, emails


def _texts(path: Path):
    """Every string stored in a file: parquet cells, SQLite cells, or the bytes of anything else."""
    suffix = path.suffix
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
        for col in frame.columns:
            if frame[col].dtype == object:
                yield from (str(v) for v in frame[col].dropna().unique())
        return
    head = path.read_bytes()[:16]
    if head.startswith(b"SQLite format 3"):
        with sqlite3.connect(path) as db:
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                for row in db.execute(f'SELECT * FROM "{table}"'):
                    yield from (v if isinstance(v, str) else (v.decode("latin-1") if isinstance(v, bytes) else "")
                                for v in row)
        return
    yield path.read_bytes().decode("latin-1")


def test_no_raw_phone_or_email_anywhere(world, server):
    settings, _ = world
    phones, emails = _raw_pii(settings)
    assert phones and emails
    # Ask the live service with raw identifiers first, so its logs and decision log have had the chance to leak.
    for phone in sorted(phones)[:5]:
        httpx.post(f"{server}/decide", json={"customer": {"id_type": "phone", "id": phone}}, timeout=30)
    for email in sorted(emails)[:5]:
        httpx.post(f"{server}/decide", json={"customer": {"id_type": "email", "id": email}}, timeout=30)

    phone_re = re.compile(r"(?<!\d)(?:\+?86)?(" + "|".join(sorted(phones)) + r")(?!\d)")
    files = [p for d in PRODUCT_STATE for p in (settings.home / d).rglob("*") if p.is_file()]
    files.append(Path(settings.decision_log))
    assert len(files) > 10
    leaks = []
    for path in files:
        for text in _texts(path):
            digits_only = re.sub(r"[\s\-+]", "", text) if len(text) < 64 else text
            low = text.lower()
            if phone_re.search(text) or phone_re.search(digits_only) or any(e in low for e in emails):
                leaks.append(str(path))
                break
    assert not leaks, f"raw phone or e-mail found in {leaks}"
