"""Durable decision and feedback log (SQLite, WAL, fsync on commit): an acknowledged write survives a crash.

Each decision keeps the propensity of every returned action so off-policy evaluation is possible later.
Only person ids and keyed identifiers are stored, never raw phone numbers or e-mails.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    person_id TEXT,
    channel TEXT,
    actions TEXT NOT NULL,
    model_versions TEXT NOT NULL,
    experiment_arm TEXT NOT NULL,
    degraded INTEGER NOT NULL,
    cold_start INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    decision_id TEXT NOT NULL REFERENCES decisions(decision_id),
    action_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    value REAL,
    ts TEXT NOT NULL,
    PRIMARY KEY (decision_id, action_id, outcome)
);
"""


class UnknownDecision(KeyError):
    """Feedback names a decision this service never made."""


class DecisionLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def record_decision(self, decision, channel: str | None) -> None:
        actions = [
            {"action_id": a.action_id, "channel": a.channel, "propensity": a.propensity, "score": a.score}
            for a in decision.actions
        ]
        with self._lock:
            self._db.execute(
                "INSERT INTO decisions VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    decision.decision_id,
                    datetime.now(UTC).isoformat(),
                    decision.person_id,
                    channel,
                    json.dumps(actions),
                    json.dumps(decision.model_versions),
                    decision.experiment_arm,
                    int(decision.degraded),
                    int(decision.cold_start),
                ),
            )

    def record_feedback(self, decision_id: str, action_id: str, outcome: str, value, ts) -> bool:
        """Store one outcome; returns False when that exact (decision, action, outcome) was already stored."""
        with self._lock:
            row = self._db.execute(
                "SELECT actions FROM decisions WHERE decision_id = ?", (decision_id,)
            ).fetchone()
            if row is None:
                raise UnknownDecision(f"unknown decision_id {decision_id!r}")
            if action_id not in {a["action_id"] for a in json.loads(row[0])}:
                raise UnknownDecision(f"decision {decision_id!r} did not offer action {action_id!r}")
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO feedback VALUES (?,?,?,?,?)",
                (decision_id, action_id, outcome, value, (ts or datetime.now(UTC)).isoformat()),
            )
            return cursor.rowcount == 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "decisions": self._db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0],
                "feedback": self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0],
            }

    def close(self) -> None:
        with self._lock:
            self._db.close()
