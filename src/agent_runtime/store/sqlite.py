"""The embedded default store: one SQLite file, opened through aiosqlite.

Why it is safe under concurrency without a lock: aiosqlite runs every statement of a
connection on one worker thread, in order, and every write here is a single statement
(existence checks ride inside it as ``WHERE EXISTS``), so each write is atomic on its own.
The approval decision is a compare-and-set ``UPDATE ... WHERE status = 'pending'`` whose row
count tells the winner, which also holds across processes sharing the file.

WAL journal mode lets readers proceed while a write commits; ``synchronous=NORMAL`` is
durable across application crashes in WAL mode (only an OS crash may lose the last commits);
the busy timeout absorbs short lock waits from another process (the CLI reading the file).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from agent_runtime.errors import SessionAlreadyExists, SessionNotFound
from agent_runtime.store.records import ApprovalRecord, MessageRecord, SessionRecord

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

BUSY_TIMEOUT_MS = 5_000

# Each entry migrates from version i to i + 1; append, never edit, so old files upgrade.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        agent TEXT,
        deleted_at REAL
    );
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions (session_id),
        role TEXT NOT NULL,
        content TEXT,
        agent TEXT,
        created_at REAL NOT NULL,
        tool_calls TEXT NOT NULL DEFAULT '[]',
        tool_call_id TEXT
    );
    CREATE INDEX messages_by_session ON messages (session_id, seq);
    CREATE TABLE approvals (
        call_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (session_id),
        tool TEXT NOT NULL,
        arguments TEXT NOT NULL,
        agent TEXT NOT NULL,
        reason TEXT NOT NULL,
        timeout_s REAL NOT NULL,
        requested_at REAL NOT NULL,
        deadline REAL NOT NULL,
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        trace_flags INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'decided')),
        decision TEXT,
        decided_arguments TEXT,
        feedback TEXT,
        outcome TEXT,
        decided_at REAL
    );
    CREATE INDEX approvals_by_status ON approvals (status, session_id, requested_at);
    """,
    # 2: the transcript is the run's state (handoff entries, tool outcomes), runs resume
    # exactly once (resumed_by), one run per session at a time (run_owner, run_until).
    """
    ALTER TABLE messages ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE approvals ADD COLUMN decided_by TEXT;
    ALTER TABLE approvals ADD COLUMN resumed_by TEXT;
    ALTER TABLE approvals ADD COLUMN resumed_at REAL;
    ALTER TABLE sessions ADD COLUMN run_owner TEXT;
    ALTER TABLE sessions ADD COLUMN run_until REAL;
    UPDATE approvals SET resumed_by = 'before-resumable-runs' WHERE status = 'decided';
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

# Queries are literal constants: only values travel as parameters, never text.
_APPROVAL_COLUMNS = (
    "call_id, session_id, tool, arguments, agent, reason, timeout_s, requested_at, deadline, "
    "trace_id, span_id, trace_flags, status, decision, decided_arguments, feedback, outcome, "
    "decided_at, decided_by, resumed_by"
)
_LIVE_SESSION = "EXISTS (SELECT 1 FROM sessions WHERE session_id = ? AND deleted_at IS NULL)"
_SELECT_APPROVALS = (
    "SELECT call_id, session_id, tool, arguments, agent, reason, timeout_s, requested_at, "
    "deadline, trace_id, span_id, trace_flags, status, decision, decided_arguments, feedback, "
    "outcome, decided_at, decided_by, resumed_by FROM approvals "
)
_INSERT_APPROVAL = (
    "INSERT INTO approvals (" + _APPROVAL_COLUMNS + ") "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE " + _LIVE_SESSION
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (session_id, role, content, agent, created_at, tool_calls, "
    "tool_call_id, meta) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE " + _LIVE_SESSION
)
_SELECT_MESSAGES = (
    "SELECT seq, session_id, role, content, agent, created_at, tool_calls, tool_call_id, meta "
    "FROM messages WHERE session_id = ? ORDER BY seq LIMIT ? OFFSET ?"
)


class SQLiteStore:
    """:class:`~agent_runtime.store.Store` on one SQLite file (created with its folder)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None

    async def __aenter__(self) -> SQLiteStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open; await open() first")
        return self._db

    async def open(self) -> None:
        """Connect, set the pragmas and bring the schema up to :data:`SCHEMA_VERSION`."""
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, each statement its own transaction; the
        # migrations manage theirs explicitly.
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            await self._migrate(db)
            # The embedded store belongs to one process: a run lease left by a previous
            # process (killed while a stream ran) is void now, so its session is usable.
            await db.execute("UPDATE sessions SET run_owner = NULL, run_until = NULL")
        except BaseException:
            await db.close()
            raise
        self._db = db

    @staticmethod
    async def _migrate(db: aiosqlite.Connection) -> None:
        await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        async with db.execute("SELECT version FROM schema_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row is not None else 0
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema version {current} is newer than this code supports "
                f"({SCHEMA_VERSION}); upgrade agent-runtime"
            )
        for version in range(current, SCHEMA_VERSION):
            # executescript commits first, so the whole step runs in its own transaction.
            await db.executescript(
                f"BEGIN IMMEDIATE;\n{_MIGRATIONS[version]}\n"
                "DELETE FROM schema_version;\n"
                f"INSERT INTO schema_version (version) VALUES ({version + 1});\nCOMMIT;"
            )

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def ping(self) -> bool:
        if self._db is None:
            return False
        try:
            async with self._db.execute("SELECT 1") as cur:
                return await cur.fetchone() is not None
        except (sqlite3.Error, ValueError):
            return False

    async def schema_version(self) -> int:
        """The schema version stored in the file (for diagnostics and tests)."""
        async with self._conn.execute("SELECT version FROM schema_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row is not None else 0

    # --- sessions ---------------------------------------------------------------------

    async def insert_session(self, record: SessionRecord) -> None:
        try:
            await self._conn.execute(
                "INSERT INTO sessions (session_id, created_at, agent, deleted_at) "
                "VALUES (?, ?, ?, ?)",
                (record.session_id, record.created_at, record.agent, record.deleted_at),
            )
        except sqlite3.IntegrityError as exc:
            raise SessionAlreadyExists.for_id(record.session_id) from exc

    async def get_session(self, session_id: str) -> SessionRecord | None:
        async with self._conn.execute(
            "SELECT session_id, created_at, agent, deleted_at FROM sessions "
            "WHERE session_id = ? AND deleted_at IS NULL",
            (session_id,),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return SessionRecord(row["session_id"], row["created_at"], row["agent"], None)

    async def set_session_agent(self, session_id: str, agent: str | None) -> None:
        async with self._conn.execute(
            "UPDATE sessions SET agent = ? WHERE session_id = ? AND deleted_at IS NULL",
            (agent, session_id),
        ) as cur:
            if cur.rowcount == 0:
                raise SessionNotFound.for_id(session_id)

    async def soft_delete_session(self, session_id: str, deleted_at: float) -> bool:
        async with self._conn.execute(
            "UPDATE sessions SET deleted_at = ? WHERE session_id = ? AND deleted_at IS NULL",
            (deleted_at, session_id),
        ) as cur:
            return cur.rowcount > 0

    # --- messages ---------------------------------------------------------------------

    async def append_message(self, record: MessageRecord) -> MessageRecord:
        async with self._conn.execute(
            _INSERT_MESSAGE,
            (
                record.session_id,
                record.role,
                record.content,
                record.agent,
                record.created_at,
                json.dumps(record.tool_calls),
                record.tool_call_id,
                json.dumps(record.meta),
                record.session_id,
            ),
        ) as cur:
            if cur.rowcount == 0:
                raise SessionNotFound.for_id(record.session_id)
            seq = cur.lastrowid or 0
        return replace(record, seq=seq)

    async def list_messages(
        self, session_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[MessageRecord]:
        async with self._conn.execute(
            _SELECT_MESSAGES, (session_id, -1 if limit is None else limit, offset)
        ) as cur:
            rows = await cur.fetchall()
        return [_message_from_row(row) for row in rows]

    async def count_messages(self, session_id: str) -> int:
        async with self._conn.execute(
            "SELECT COUNT(*) FROM messages WHERE session_id = ?", (session_id,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row is not None else 0

    # --- one run per session -----------------------------------------------------------

    async def claim_session_run(
        self, session_id: str, owner: str, *, now: float, until: float
    ) -> bool:
        async with self._conn.execute(
            "UPDATE sessions SET run_owner = ?, run_until = ? WHERE session_id = ? "
            "AND deleted_at IS NULL AND (run_owner IS NULL OR run_owner = ? OR run_until < ?)",
            (owner, until, session_id, owner, now),
        ) as cur:
            return cur.rowcount > 0

    async def renew_session_run(self, session_id: str, owner: str, *, until: float) -> bool:
        async with self._conn.execute(
            "UPDATE sessions SET run_until = ? WHERE session_id = ? AND run_owner = ?",
            (until, session_id, owner),
        ) as cur:
            return cur.rowcount > 0

    async def release_session_run(self, session_id: str, owner: str) -> None:
        await self._conn.execute(
            "UPDATE sessions SET run_owner = NULL, run_until = NULL "
            "WHERE session_id = ? AND run_owner = ?",
            (session_id, owner),
        )

    # --- approvals --------------------------------------------------------------------

    async def insert_approval(self, record: ApprovalRecord) -> None:
        """Store a new approval; ``SessionNotFound`` if the session is gone.

        A duplicate ``call_id`` is a caller bug (call ids are unique per model call) and
        raises ``ValueError``.
        """
        try:
            async with self._conn.execute(
                _INSERT_APPROVAL, (*_approval_values(record), record.session_id)
            ) as cur:
                inserted = cur.rowcount > 0
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"approval {record.call_id!r} already exists") from exc
        if not inserted:
            raise SessionNotFound.for_id(record.session_id)

    async def get_approval(self, call_id: str) -> ApprovalRecord | None:
        async with self._conn.execute(_SELECT_APPROVALS + "WHERE call_id = ?", (call_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else _approval_from_row(row)

    async def list_pending_approvals(self, session_id: str | None) -> list[ApprovalRecord]:
        if session_id is None:
            query = _SELECT_APPROVALS + "WHERE status = 'pending' ORDER BY requested_at, rowid"
            params: tuple[str, ...] = ()
        else:
            query = (
                _SELECT_APPROVALS
                + "WHERE status = 'pending' AND session_id = ? ORDER BY requested_at, rowid"
            )
            params = (session_id,)
        async with self._conn.execute(query, params) as cur:
            rows = await cur.fetchall()
        return [_approval_from_row(row) for row in rows]

    async def record_decision(
        self,
        call_id: str,
        *,
        decision: str,
        arguments: dict[str, Any] | None,
        feedback: str | None,
        outcome: str | None,
        decided_at: float,
        decided_by: str | None = None,
    ) -> bool:
        async with self._conn.execute(
            "UPDATE approvals SET status = 'decided', decision = ?, decided_arguments = ?, "
            "feedback = ?, outcome = ?, decided_at = ?, decided_by = ? "
            "WHERE call_id = ? AND status = 'pending'",
            (
                decision,
                None if arguments is None else json.dumps(arguments),
                feedback,
                outcome,
                decided_at,
                decided_by,
                call_id,
            ),
        ) as cur:
            return cur.rowcount > 0

    async def claim_resume(self, call_id: str, owner: str, *, now: float) -> bool:
        async with self._conn.execute(
            "UPDATE approvals SET resumed_by = ?, resumed_at = ? "
            "WHERE call_id = ? AND status = 'decided' AND resumed_by IS NULL",
            (owner, now, call_id),
        ) as cur:
            return cur.rowcount > 0

    async def list_unresumed_decisions(
        self, decided_before: float, limit: int
    ) -> list[ApprovalRecord]:
        async with self._conn.execute(
            _SELECT_APPROVALS + "WHERE status = 'decided' AND resumed_by IS NULL "
            "AND decided_at < ? ORDER BY decided_at LIMIT ?",
            (decided_before, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [_approval_from_row(row) for row in rows]

    async def list_expired_approvals(self, now: float, limit: int) -> list[ApprovalRecord]:
        async with self._conn.execute(
            _SELECT_APPROVALS + "WHERE status = 'pending' AND deadline < ? "
            "ORDER BY deadline LIMIT ?",
            (now, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [_approval_from_row(row) for row in rows]


def _approval_values(record: ApprovalRecord) -> tuple[Any, ...]:
    return (
        record.call_id,
        record.session_id,
        record.tool,
        json.dumps(record.arguments),
        record.agent,
        record.reason,
        record.timeout_s,
        record.requested_at,
        record.deadline,
        record.trace_id,
        record.span_id,
        record.trace_flags,
        record.status,
        record.decision,
        None if record.decided_arguments is None else json.dumps(record.decided_arguments),
        record.feedback,
        record.outcome,
        record.decided_at,
        record.decided_by,
        record.resumed_by,
    )


def _message_from_row(row: aiosqlite.Row) -> MessageRecord:
    return MessageRecord(
        session_id=row["session_id"],
        role=row["role"],
        content=row["content"],
        agent=row["agent"],
        created_at=row["created_at"],
        tool_calls=json.loads(row["tool_calls"]),
        tool_call_id=row["tool_call_id"],
        meta=json.loads(row["meta"]),
        seq=row["seq"],
    )


def _approval_from_row(row: aiosqlite.Row) -> ApprovalRecord:
    decided = row["decided_arguments"]
    return ApprovalRecord(
        call_id=row["call_id"],
        session_id=row["session_id"],
        tool=row["tool"],
        arguments=json.loads(row["arguments"]),
        agent=row["agent"],
        reason=row["reason"],
        timeout_s=row["timeout_s"],
        requested_at=row["requested_at"],
        deadline=row["deadline"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        trace_flags=row["trace_flags"],
        status=row["status"],
        decision=row["decision"],
        decided_arguments=None if decided is None else json.loads(decided),
        feedback=row["feedback"],
        outcome=row["outcome"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
        resumed_by=row["resumed_by"],
    )
