"""Durable decision and feedback log (SQLite, WAL, fsync on commit): an acknowledged write survives a crash.

Each decision keeps every candidate's propensity, priority and the rule that removed it (so off-policy
evaluation is possible later), the model versions and the experiment arm. Only person ids and keyed
identifiers are stored, never raw phone numbers or e-mails.

Why a writer thread: an fsync costs ~5 ms on this disk, which would cap the service near 200 decisions/s
if every request committed alone. Requests hand their write to one writer thread and wait; the writer
commits everything queued so far in one transaction (group commit, one fsync) and only then releases the
waiting requests. So a caller is answered only after its row is on disk, and throughput grows with load.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["DecisionLog", "UnknownDecision"]

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
# columns added after the first release; older files are migrated in place at open
_ADDED_COLUMNS = {"candidates": "TEXT", "degraded_reason": "TEXT", "shadow": "TEXT"}
MAX_BATCH = 512


class UnknownDecision(KeyError):
    """Feedback names a decision this service never made (or an action it did not offer)."""


def _candidate_rows(candidates: Iterable) -> list[dict]:
    """Every candidate's factors, read by attribute so the log does not depend on the funnel's classes."""
    rows = []
    for c in candidates:
        action = getattr(c, "action", None)
        priority = getattr(c, "priority", None)
        rows.append({
            "action_id": getattr(action, "id", None) or getattr(c, "action_id", None),
            "channel": getattr(c, "channel", None),
            "propensity": _number(getattr(c, "propensity", None)),
            "priority": _number(priority() if callable(priority) else priority),
            "removed_by": getattr(c, "removed_by", None),
        })
    return rows


def _number(value) -> float | None:
    try:
        return None if value is None else round(float(value), 6)
    except (TypeError, ValueError):
        return None


class DecisionLog:
    """Append-only decisions and idempotent feedback in one SQLite file.

    Parameters
    ----------
    path : Path
        The SQLite file (created with its folder if missing).
    synchronous : {"FULL", "NORMAL"}, default="FULL"
        FULL fsyncs each commit (survives power loss); NORMAL survives a process kill only.
    """

    def __init__(self, path: Path, synchronous: str = "FULL"):
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(decisions)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in present:
                self._db.execute(f"ALTER TABLE decisions ADD COLUMN {name} {kind}")
        # caps and suppression read a person's recent decisions (serving.contact_history)
        self._db.execute("CREATE INDEX IF NOT EXISTS decisions_person_ts ON decisions(person_id, ts)")
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
        self._writer.start()

    # -- the writer thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Callable, tuple, Future]]) -> None:
        results = []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for op, args, future in batch:
                # a savepoint per operation: one failing write (unknown decision, duplicate id) is undone
                # alone and reported to its caller; the rest of the group still commits
                self._db.execute("SAVEPOINT op")
                try:
                    results.append((future, op(*args), None))
                except (UnknownDecision, sqlite3.IntegrityError) as exc:
                    self._db.execute("ROLLBACK TO op")
                    results.append((future, None, exc))
                self._db.execute("RELEASE op")
            self._db.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - the disk failed: every waiting caller must hear about it
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            for _, _, future in batch:
                future.set_exception(exc)
            return
        for future, value, error in results:
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    def _submit(self, op: Callable, *args):
        if self._closed:
            raise RuntimeError(f"decision log {self.path} is closed")
        future: Future = Future()
        self._queue.put((op, args, future))
        return future.result()

    # -- operations (run on the writer thread, inside its transaction) ----------------------------------
    def _insert_decisions(self, rows: list[tuple]) -> None:
        self._db.executemany(
            "INSERT INTO decisions (decision_id, ts, person_id, channel, actions, model_versions, experiment_arm, "
            "degraded, cold_start, candidates, degraded_reason, shadow) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )

    def _insert_feedback(self, decision_id: str, action_id: str, outcome: str, value, ts: str) -> bool:
        row = self._db.execute("SELECT actions FROM decisions WHERE decision_id = ?", (decision_id,)).fetchone()
        if row is None:
            raise UnknownDecision(f"unknown decision_id {decision_id!r}")
        if action_id not in {a["action_id"] for a in json.loads(row[0])}:
            raise UnknownDecision(f"decision {decision_id!r} did not offer action {action_id!r}")
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO feedback VALUES (?,?,?,?,?)", (decision_id, action_id, outcome, value, ts)
        )
        return cursor.rowcount == 1

    def _counts(self) -> dict[str, int]:
        return {
            "decisions": self._db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0],
            "feedback": self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0],
        }

    # -- public API -------------------------------------------------------------------------------------
    @staticmethod
    def _row(decision, channel: str | None, candidates: Iterable) -> tuple:
        actions = [
            {"action_id": a.action_id, "channel": a.channel, "propensity": a.propensity, "score": a.score}
            for a in decision.actions
        ]
        shadow = getattr(decision, "shadow", None)
        return (
            decision.decision_id,
            datetime.now(UTC).isoformat(),
            decision.person_id,
            channel,
            json.dumps(actions),
            json.dumps(decision.model_versions),
            decision.experiment_arm,
            int(decision.degraded),
            int(decision.cold_start),
            json.dumps(_candidate_rows(candidates)),
            getattr(decision, "degraded_reason", None),
            None if shadow is None else json.dumps(shadow.model_dump(mode="json")),
        )

    def record_decision(self, decision, channel: str | None, candidates: Iterable = ()) -> None:
        """Store one decision; returns once it is committed to disk."""
        self._submit(self._insert_decisions, [self._row(decision, channel, candidates)])

    def record_decisions(self, items: Iterable[tuple]) -> None:
        """Store many ``(decision, channel, candidates)`` in one transaction (a batch call)."""
        rows = [self._row(d, ch, cands) for d, ch, cands in items]
        if rows:
            self._submit(self._insert_decisions, rows)

    def record_feedback(self, decision_id: str, action_id: str, outcome: str, value, ts) -> bool:
        """Store one outcome; returns False when that exact (decision, action, outcome) was already stored.

        Raises :class:`UnknownDecision` when the decision is unknown or did not offer ``action_id``.
        """
        stamp = (ts or datetime.now(UTC)).isoformat()
        return self._submit(self._insert_feedback, decision_id, action_id, outcome, value, stamp)

    def counts(self) -> dict[str, int]:
        return self._submit(self._counts)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join()
        self._db.close()
