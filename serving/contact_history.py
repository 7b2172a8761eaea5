"""Who did we contact, and who said no: the history that caps and suppression count against.

:class:`ContactHistory` is the protocol the engine reads (recent contacts and rejections per *resolved*
person, across all channels and identifiers). Two implementations: :class:`InMemoryContactHistory` for
tests, batches and simulations, and :class:`SQLiteContactHistory`, a read-only view of the decision log
(``serving.decision_log`` writes it; this module only reads its ``decisions`` and ``feedback`` tables).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = [
    "REJECTION_OUTCOMES", "Contact", "ContactHistory", "InMemoryContactHistory", "SQLiteContactHistory",
]

# Feedback outcomes that count as the person saying no to an action.
REJECTION_OUTCOMES: tuple[str, ...] = ("dismiss", "opt_out")


@dataclass(frozen=True)
class Contact:
    ts: datetime
    action_id: str
    channel: str


@runtime_checkable
class ContactHistory(Protocol):
    def contacts(self, person_id: str, since: datetime) -> list[Contact]:
        """Contacts of the person at or after ``since`` (UTC), any channel."""

    def rejections(self, person_id: str, since: datetime) -> dict[str, int]:
        """Rejections (dismissals, opt-outs) per action id at or after ``since``."""

    def record(self, person_id: str, contacts: Iterable[Contact]) -> None:
        """Remember contacts just decided (a no-op where another component writes the store)."""


class InMemoryContactHistory:
    """A dict-backed history; thread-safe enough for one process (appends under a lock)."""

    def __init__(self) -> None:
        self._contacts: dict[str, list[Contact]] = defaultdict(list)
        self._rejections: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        self._lock = threading.Lock()

    def contacts(self, person_id: str, since: datetime) -> list[Contact]:
        return [c for c in self._contacts.get(person_id, ()) if c.ts >= since]

    def rejections(self, person_id: str, since: datetime) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ts, action_id in self._rejections.get(person_id, ()):
            if ts >= since:
                counts[action_id] = counts.get(action_id, 0) + 1
        return counts

    def record(self, person_id: str, contacts: Iterable[Contact]) -> None:
        with self._lock:
            self._contacts[person_id].extend(contacts)

    def reject(self, person_id: str, action_id: str, ts: datetime) -> None:
        with self._lock:
            self._rejections[person_id].append((ts, action_id))

    def total_contacts(self) -> int:
        return sum(len(v) for v in self._contacts.values())


class SQLiteContactHistory:
    """Reads contacts and rejections from the decision log's SQLite file (never writes rows).

    A decision counts as a contact for each returned action on an outbound channel (``outbound``). The
    log keeps those in its ``contacts`` table (one narrow row per contact, indexed by person and time) and
    the person on each feedback row, so a lookup reads only the person's recent contacts and rejections,
    however many decisions they had. A log of an earlier release (no such table or column) is read
    through its decisions instead; there ``ensure_index`` creates ``decisions(person_id, ts)`` if missing.
    """

    def __init__(self, path: Path, outbound: Iterable[str], ensure_index: bool = True) -> None:
        self.path = Path(path)
        self.outbound = frozenset(outbound)
        self.ensure_index = ensure_index
        self._db: sqlite3.Connection | None = None
        self._current = False  # the log has the contacts table and feedback.person_id
        self._lock = threading.Lock()
        # contacts decided but not yet on disk (the log commits in groups, after the funnel has run)
        self._unwritten: dict[str, list[Contact]] = defaultdict(list)

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None:
            if not self.path.exists():
                return None
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5)
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"decisions", "feedback"} <= tables:
                db.close()
                return None
            feedback_columns = {row[1] for row in db.execute("PRAGMA table_info(feedback)")}
            self._current = "contacts" in tables and "person_id" in feedback_columns
            if self.ensure_index and not self._current:
                db.execute("CREATE INDEX IF NOT EXISTS decisions_person_ts ON decisions(person_id, ts)")
            self._db = db
        return self._db

    def contacts(self, person_id: str, since: datetime) -> list[Contact]:
        """The person's contacts since ``since``: those in the log and those recorded but not yet written.

        The unwritten ones are read first: a contact written in between is counted twice (a stricter
        cap for a moment), never missed.
        """
        with self._lock:
            unwritten = [c for c in self._unwritten.get(person_id, ()) if c.ts >= since]
            db = self._connect()
            if db is None:
                return unwritten
            if self._current:
                rows = db.execute("SELECT ts, action_id, channel FROM contacts WHERE person_id = ? AND ts >= ?",
                                  (person_id, since.isoformat())).fetchall()
                return [Contact(ts=datetime.fromisoformat(ts), action_id=a, channel=ch)
                        for ts, a, ch in rows if ch in self.outbound] + unwritten
            rows = db.execute("SELECT ts, actions FROM decisions WHERE person_id = ? AND ts >= ?",
                              (person_id, since.isoformat())).fetchall()
        out = unwritten
        for ts, actions in rows:
            stamp = datetime.fromisoformat(ts)
            for a in json.loads(actions):
                if a.get("channel") in self.outbound:
                    out.append(Contact(ts=stamp, action_id=a["action_id"], channel=a["channel"]))
        return out

    def rejections(self, person_id: str, since: datetime) -> dict[str, int]:
        marks = ",".join("?" * len(REJECTION_OUTCOMES))
        with self._lock:
            db = self._connect()
            if db is None:
                return {}
            if self._current:
                rows = db.execute(
                    f"SELECT action_id, COUNT(*) FROM feedback WHERE person_id = ? AND outcome IN ({marks}) "
                    f"AND ts >= ? GROUP BY action_id", (person_id, *REJECTION_OUTCOMES, since.isoformat()),
                ).fetchall()
                return {action_id: int(n) for action_id, n in rows}
            rows = db.execute(
                f"SELECT f.action_id, COUNT(*) FROM feedback f JOIN decisions d USING (decision_id) "
                f"WHERE d.person_id = ? AND f.outcome IN ({marks}) AND f.ts >= ? GROUP BY f.action_id",
                (person_id, *REJECTION_OUTCOMES, since.isoformat()),
            ).fetchall()
        return {action_id: int(n) for action_id, n in rows}

    def used_on(self, day: date) -> list[tuple[str, str, int]]:
        """``(action_id, channel, contacts)`` on record for a UTC day (the volume ledger's starting point)."""
        start = datetime.combine(day, time.min, tzinfo=UTC)
        with self._lock:
            db = self._connect()
            if db is None or not self._current:
                return []
            rows = db.execute("SELECT action_id, channel, COUNT(*) FROM contacts WHERE ts >= ? AND ts < ? "
                              "GROUP BY action_id, channel",
                              (start.isoformat(), (start + timedelta(days=1)).isoformat())).fetchall()
        return [(a, ch, int(n)) for a, ch, n in rows if ch in self.outbound]

    def record(self, person_id: str, contacts: Iterable[Contact]) -> None:
        """Count ``contacts`` from now on, until :meth:`written` says the log holds them.

        The service writes decisions to the log after the funnel, in groups; without this, a second
        request for the same person (or a later chunk of a batch) would not see the first one's contacts.
        """
        contacts = [c for c in contacts if c.channel in self.outbound]
        if contacts:
            with self._lock:
                self._unwritten[person_id].extend(contacts)

    def written(self, decisions: Iterable) -> None:
        """The log now holds (or failed to write) these decisions: for each of their actions, stop counting
        one recorded contact of that person, action and channel."""
        with self._lock:
            for d in decisions:
                pending = self._unwritten.get(d.person_id) if d.person_id is not None else None
                if not pending:
                    continue
                for a in d.actions:
                    match = next((i for i, c in enumerate(pending)
                                  if c.action_id == a.action_id and c.channel == a.channel), None)
                    if match is not None:
                        del pending[match]
                if not pending:
                    del self._unwritten[d.person_id]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
