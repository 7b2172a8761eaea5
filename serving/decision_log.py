"""Durable decision and feedback log (SQLite, WAL, fsync on commit): an acknowledged write survives a crash.

Each decision is one row: its actions, every candidate's propensity, priority and the rule that removed
it (one packed JSON column, so off-policy evaluation is possible later), the model versions and the
experiment arm. A trigger copies each outbound action of a known person into a narrow ``contacts`` table
in the same statement, and feedback carries its decision's person: caps and suppression read a person's
recent contacts and rejections with one index range each, instead of walking every past decision of the
person (a cost that grew with traffic). Only person ids and keyed identifiers are stored, never raw
phone numbers or e-mails.

Why a writer thread: an fsync costs up to a few ms, which would cap the service at a few hundred
decisions/s if every request committed alone. Requests hand their write to one writer thread and wait (on
a future, which an async endpoint awaits without holding a thread); the writer encodes the rows and
commits everything queued so far at once (group commit, one fsync), and only then releases the waiting
requests. So a caller is answered only after its row is on disk, and throughput grows with load.

Why one statement per group: every SQLite call gives up the GIL and must take it back, and while the
event loop computes decisions each retake waits for it (up to the switch interval). A group of decisions
is therefore one multi-row ``INSERT`` in autocommit mode (atomic and durable on its own, contacts written
by the trigger): two GIL handovers per group instead of four per decision (savepoint, two inserts,
release) plus begin and commit.
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

from features.schema import CONSENT_CHANNELS

__all__ = ["DecisionLog", "UnknownDecision", "pack_candidates", "unpack_candidates"]

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
CREATE TABLE IF NOT EXISTS contacts (
    person_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    action_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    decision_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS contact_channels (channel TEXT PRIMARY KEY);
"""
# The outbound actions of a new decision, as contacts (also used once to fill the table of an older log).
_CONTACTS_OF = """
SELECT {d}.person_id, {d}.ts, json_extract(a.value, '$.action_id'), json_extract(a.value, '$.channel'),
       {d}.decision_id
FROM {source}json_each({d}.actions) AS a
WHERE {d}.person_id IS NOT NULL AND json_extract(a.value, '$.channel') IN (SELECT channel FROM contact_channels)
"""
_TRIGGER = f"""
CREATE TRIGGER IF NOT EXISTS decisions_contacts AFTER INSERT ON decisions WHEN NEW.person_id IS NOT NULL
BEGIN
    INSERT INTO contacts (person_id, ts, action_id, channel, decision_id) {_CONTACTS_OF.format(d="NEW", source="")};
END
"""
# columns added after the first release; older files are migrated in place at open
_ADDED_COLUMNS = {"decisions": {"candidates": "TEXT", "degraded_reason": "TEXT", "shadow": "TEXT"},
                  "feedback": {"person_id": "TEXT"}}
MAX_BATCH = 512
ROWS_PER_INSERT = 256  # x 12 columns stays far below SQLite's 32766 parameters per statement
_DECISION_COLUMNS = ("decision_id", "ts", "person_id", "channel", "actions", "model_versions", "experiment_arm",
                     "degraded", "cold_start", "candidates", "degraded_reason", "shadow")


# built once: json.dumps(..., separators=...) constructs an encoder per call (a third of the time here)
_COMPACT = json.JSONEncoder(separators=(",", ":"))


class UnknownDecision(KeyError):
    """Feedback names a decision this service never made (or an action it did not offer)."""


def pack_candidates(candidates: Iterable) -> str:
    """Every candidate's factors as one compact JSON object of parallel lists (``action_id``, ``channel``,
    ``propensity``, ``priority``, ``removed_by``), each distinct removal rule stored once in ``rules`` and
    referred to by index: a decision's ~35 candidates take ~1.8 kB instead of ~5 kB as a list of objects,
    and encode in less than half the time. :func:`unpack_candidates` gives the rows back."""
    ids, channels, propensities, priorities, removed = [], [], [], [], []
    rules: dict[str, int] = {}
    for c in candidates:
        ids.append(c.action.id)
        channels.append(c.channel)
        p = c.propensity
        if p or c.sampled_propensity is not None:
            propensities.append(round(p, 6))
            priorities.append(round(c.priority, 6))
        else:  # never scored (removed before scoring)
            propensities.append(0.0)
            priorities.append(0.0)
        rule = c.removed_by
        removed.append(None if rule is None else rules.setdefault(rule, len(rules)))
    return _COMPACT.encode({"action_id": ids, "channel": channels, "propensity": propensities,
                            "priority": priorities, "removed_by": removed, "rules": list(rules)})


def unpack_candidates(text: str | None) -> list[dict]:
    """The ``candidates`` column as one dict per candidate (also reads the older list-of-objects form)."""
    if not text:
        return []
    packed = json.loads(text)
    if isinstance(packed, list):
        return packed
    rules = packed["rules"]
    return [
        {"action_id": a, "channel": ch, "propensity": p, "priority": q, "removed_by": None if r is None else rules[r]}
        for a, ch, p, q, r in zip(packed["action_id"], packed["channel"], packed["propensity"],
                                  packed["priority"], packed["removed_by"], strict=True)
    ]


class DecisionLog:
    """Append-only decisions and idempotent feedback in one SQLite file.

    Parameters
    ----------
    path : Path
        The SQLite file (created with its folder if missing).
    synchronous : {"FULL", "NORMAL"}, default="FULL"
        FULL fsyncs each commit (survives power loss); NORMAL survives a process kill only.
    contact_channels : iterable of str, default=CONSENT_CHANNELS
        Channels whose actions count as contacts (the policies' outbound channels): each such action of a
        known person also goes to the ``contacts`` table that caps count against. Stored in the file for
        its trigger, so the last log opened on a file decides.
    """

    def __init__(self, path: Path, synchronous: str = "FULL", contact_channels: Iterable[str] = CONSENT_CHANNELS):
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.path = Path(path)
        self.contact_channels = frozenset(contact_channels)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._migrate()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
        self._writer.start()

    def _migrate(self) -> None:
        """Create the tables; bring files of earlier releases up to date in place."""
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        db.executescript(_SCHEMA)
        for table, columns in _ADDED_COLUMNS.items():
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                    if (table, name) == ("feedback", "person_id"):
                        db.execute("UPDATE feedback SET person_id = (SELECT d.person_id FROM decisions d "
                                   "WHERE d.decision_id = feedback.decision_id)")
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM contact_channels")
        db.executemany("INSERT INTO contact_channels VALUES (?)", [(c,) for c in sorted(self.contact_channels)])
        if "decisions" in tables and "contacts" not in tables:
            # a log written before the contacts table: derive it once from the stored actions
            db.execute("INSERT INTO contacts " + _CONTACTS_OF.format(d="d", source="decisions AS d, "))
        db.execute("COMMIT")
        db.execute(_TRIGGER)
        db.execute("CREATE INDEX IF NOT EXISTS contacts_person_ts ON contacts(person_id, ts)")
        db.execute("CREATE INDEX IF NOT EXISTS feedback_person_ts ON feedback(person_id, ts)")

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

    def _commit(self, batch: list[tuple[Callable, tuple, Future, Callable | None]]) -> None:
        # encode first, outside any transaction: a record that cannot be encoded fails alone
        inserts, others = [], []
        for op, args, future, encode in batch:
            if encode is not None:
                try:
                    args = encode(*args)
                except Exception as exc:  # noqa: BLE001 - reported to its caller, the group goes on
                    future.set_exception(exc)
                    continue
            if op == self._insert_decisions:
                inserts.append((args, future))
            else:
                others.append((op, args, future))
        if inserts:
            try:
                self._insert_decisions([row for (rows,), _ in inserts for row in rows])
            except sqlite3.IntegrityError:  # a duplicate id: nothing was written; one by one below
                others = [(self._insert_decisions, args, future) for args, future in inserts] + others
            except Exception as exc:  # noqa: BLE001 - the disk failed: every waiting caller must hear about it
                self._fail([future for _, future in inserts], exc)
            else:
                for _, future in inserts:
                    future.set_result(None)
        if others:
            self._transaction(others)

    def _transaction(self, ops: list[tuple[Callable, tuple, Future]]) -> None:
        """Run ``ops`` in one transaction, each in a savepoint: one failing write (unknown decision,
        duplicate id) is undone alone and reported to its caller; the rest of the group still commits."""
        results = []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for op, args, future in ops:
                self._db.execute("SAVEPOINT op")
                try:
                    results.append((future, op(*args), None))
                except (UnknownDecision, sqlite3.IntegrityError) as exc:
                    self._db.execute("ROLLBACK TO op")
                    results.append((future, None, exc))
                self._db.execute("RELEASE op")
            self._db.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - the disk failed: every waiting caller must hear about it
            self._fail([future for _, _, future in ops], exc)
            return
        for future, value, error in results:
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    def _fail(self, futures: list[Future], exc: Exception) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        for future in futures:
            future.set_exception(exc)

    def _enqueue(self, op: Callable, *args, encode: Callable | None = None) -> Future:
        """``op(*encode(*args))`` (or ``op(*args)``) on the writer thread; the future holds its result."""
        if self._closed:
            raise RuntimeError(f"decision log {self.path} is closed")
        future: Future = Future()
        self._queue.put((op, args, future, encode))
        return future

    def _submit(self, op: Callable, *args):
        return self._enqueue(op, *args).result()

    # -- operations (run on the writer thread, inside its transaction) ----------------------------------
    def _insert_decisions(self, rows: list[tuple]) -> None:
        """One multi-row INSERT per :data:`ROWS_PER_INSERT` rows (the trigger adds the contacts); outside a
        transaction a single statement is atomic and durable by itself, more run in one transaction."""
        marks = "(" + ",".join("?" * len(_DECISION_COLUMNS)) + ")"
        chunks = [rows[i:i + ROWS_PER_INSERT] for i in range(0, len(rows), ROWS_PER_INSERT)]
        own = len(chunks) > 1 and not self._db.in_transaction
        if own:
            self._db.execute("BEGIN IMMEDIATE")
        try:
            for chunk in chunks:
                self._db.execute(f"INSERT INTO decisions ({', '.join(_DECISION_COLUMNS)}) VALUES "
                                 + ",".join([marks] * len(chunk)), [v for row in chunk for v in row])
        except BaseException:
            if own:
                self._db.execute("ROLLBACK")
            raise
        if own:
            self._db.execute("COMMIT")

    def _insert_feedback(self, decision_id: str, action_id: str, outcome: str, value, ts: str) -> bool:
        row = self._db.execute("SELECT actions, person_id FROM decisions WHERE decision_id = ?",
                               (decision_id,)).fetchone()
        if row is None:
            raise UnknownDecision(f"unknown decision_id {decision_id!r}")
        if action_id not in {a["action_id"] for a in json.loads(row[0])}:
            raise UnknownDecision(f"decision {decision_id!r} did not offer action {action_id!r}")
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO feedback (decision_id, action_id, outcome, value, ts, person_id) "
            "VALUES (?,?,?,?,?,?)", (decision_id, action_id, outcome, value, ts, row[1])
        )
        return cursor.rowcount == 1

    def _counts(self) -> dict[str, int]:
        return {
            "decisions": self._db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0],
            "feedback": self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0],
        }

    @staticmethod
    def _rows(items: list[tuple]) -> tuple[list[tuple]]:
        """``(rows,)``: the decision rows of ``(decision, channel, candidates, ts)`` items."""
        rows = []
        for decision, channel, candidates, ts in items:
            actions = [
                {"action_id": a.action_id, "channel": a.channel, "propensity": a.propensity, "score": a.score}
                for a in decision.actions
            ]
            shadow = getattr(decision, "shadow", None)
            rows.append((
                decision.decision_id,
                ts,
                decision.person_id,
                channel,
                json.dumps(actions),
                json.dumps(decision.model_versions),
                decision.experiment_arm,
                int(decision.degraded),
                int(decision.cold_start),
                pack_candidates(candidates),
                getattr(decision, "degraded_reason", None),
                None if shadow is None else json.dumps(shadow.model_dump(mode="json")),
            ))
        return (rows,)

    # -- public API -------------------------------------------------------------------------------------
    def submit_decisions(self, items: Iterable[tuple]) -> Future:
        """Queue ``(decision, channel, candidates)`` items for one transaction; the future completes once
        they are committed to disk (an async caller awaits it without holding a thread). Encoding happens
        on the writer thread: the items must not change afterwards."""
        ts = datetime.now(UTC).isoformat()
        return self._enqueue(self._insert_decisions, [(d, ch, cands, ts) for d, ch, cands in items],
                             encode=self._rows)

    def record_decision(self, decision, channel: str | None, candidates: Iterable = ()) -> None:
        """Store one decision; returns once it is committed to disk."""
        self.submit_decisions([(decision, channel, candidates)]).result()

    def record_decisions(self, items: Iterable[tuple]) -> None:
        """Store many ``(decision, channel, candidates)`` in one transaction (a batch call)."""
        items = list(items)
        if items:
            self.submit_decisions(items).result()

    def submit_feedback(self, decision_id: str, action_id: str, outcome: str, value, ts) -> Future:
        """:meth:`record_feedback` as a future (see :meth:`submit_decisions`)."""
        stamp = (ts or datetime.now(UTC)).isoformat()
        return self._enqueue(self._insert_feedback, decision_id, action_id, outcome, value, stamp)

    def record_feedback(self, decision_id: str, action_id: str, outcome: str, value, ts) -> bool:
        """Store one outcome; returns False when that exact (decision, action, outcome) was already stored.

        Raises :class:`UnknownDecision` when the decision is unknown or did not offer ``action_id``.
        """
        return self.submit_feedback(decision_id, action_id, outcome, value, ts).result()

    def counts(self) -> dict[str, int]:
        return self._submit(self._counts)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join()
        self._db.close()
