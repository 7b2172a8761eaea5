"""The product's audit log of registry alias moves: who moved which alias of which model, when, from
which version to which, and why.

MLflow keeps only the current alias -> version pointer (no history: mlflow#2169, #14677), and its
backend tables are MLflow's own. So the product keeps its own table through SQLAlchemy: a SQLite file
under ``settings.home`` for the embedded profile, and a table in the same PostgreSQL database as the
tracking store when the tracking URI is ``postgresql://...``.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from config.settings import Settings

TABLE = "nba_registry_audit"
AUDIT_FILE = "registry_audit.db"
KINDS = ("trained", "promote", "rollback")

_metadata = sa.MetaData()
_moves = sa.Table(
    TABLE,
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(256), nullable=False, index=True),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("from_version", sa.String(32), nullable=True),
    sa.Column("to_version", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False, default=False),
    sa.Column("gates", sa.Text, nullable=False, default="[]"),
)


def current_actor() -> str:
    """Who is acting: ``$NBA_USER`` if set (service accounts, CI), else the OS user."""
    return os.environ.get("NBA_USER") or getpass.getuser()


@dataclass(frozen=True)
class AliasMove:
    """One alias move. ``from_version`` is None when the alias was not set before.

    ``kind`` is ``trained`` (a training run made its new version champion), ``promote`` or ``rollback``;
    ``gates`` lists the gate results that were checked, as ``{"gate", "passed", "detail"}`` dicts.
    """

    model: str
    alias: str
    from_version: str | None
    to_version: str
    kind: str
    reason: str
    actor: str = field(default_factory=current_actor)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    forced: bool = False
    gates: tuple[dict, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not str(self.reason).strip():
            raise ValueError(f"reason must be non-empty, got {self.reason!r}")
        if not self.model or not self.alias or not self.to_version:
            raise ValueError(f"model, alias and to_version are required, got {self.model!r}, {self.alias!r}, "
                             f"{self.to_version!r}")


def audit_url(settings: Settings) -> str:
    """SQLAlchemy URL of the audit log: the tracking database for PostgreSQL, else a SQLite file in home."""
    uri = settings.mlflow_tracking_uri
    if uri.startswith(("postgresql://", "postgresql+")):
        return _postgres_driver(uri)
    return f"sqlite:///{settings.home / AUDIT_FILE}"


def _postgres_driver(uri: str) -> str:
    """``postgresql://`` means psycopg2 to SQLAlchemy; this product ships psycopg 3."""
    if uri.startswith("postgresql://"):
        return "postgresql+psycopg://" + uri.removeprefix("postgresql://")
    return uri


class AuditLog:
    """Append-only alias-move log in a SQL database (created on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self._engine = sa.create_engine(url, future=True)
        _metadata.create_all(self._engine, checkfirst=True)

    @classmethod
    def for_settings(cls, settings: Settings) -> AuditLog:
        return cls(audit_url(settings))

    def record(self, move: AliasMove) -> None:
        with self._engine.begin() as conn:
            conn.execute(_moves.insert().values(
                model=move.model, alias=move.alias, from_version=move.from_version, to_version=move.to_version,
                kind=move.kind, actor=move.actor, at=move.at, reason=move.reason, forced=move.forced,
                gates=json.dumps(list(move.gates)),
            ))

    def history(self, model: str, alias: str | None = None) -> list[AliasMove]:
        """Every recorded move of ``model`` (optionally one alias), oldest first."""
        query = sa.select(_moves).where(_moves.c.model == model).order_by(_moves.c.id)
        if alias is not None:
            query = query.where(_moves.c.alias == alias)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AliasMove(model=r["model"], alias=r["alias"], from_version=r["from_version"],
                      to_version=r["to_version"], kind=r["kind"], reason=r["reason"], actor=r["actor"],
                      at=_utc(r["at"]), forced=bool(r["forced"]), gates=tuple(json.loads(r["gates"] or "[]")))
            for r in rows
        ]

    def dispose(self) -> None:
        self._engine.dispose()


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time in the log is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def alias_lineage(moves: list[AliasMove]) -> list[str]:
    """Versions that held the alias, oldest first, after replaying the moves: a promotion or training
    pushes its version, a rollback pops the current one. The last element is the current holder and the
    one before it is what a rollback restores."""
    stack: list[str] = []
    for move in moves:
        if move.kind == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != move.to_version:
                stack.append(move.to_version)
        elif not stack or stack[-1] != move.to_version:
            stack.append(move.to_version)
    return stack


__all__ = ["AUDIT_FILE", "TABLE", "AliasMove", "AuditLog", "alias_lineage", "audit_url", "current_actor"]
