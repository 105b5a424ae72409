"""The embedded default store: one SQLite file, opened through aiosqlite.

One connection, one writer: aiosqlite runs the connection's statements on one worker thread
in order, and :attr:`SQLiteStore._lock` keeps a multi-statement transaction (a decision with
its audit record) from interleaving with another coroutine's statements. Compare-and-set
writes (``UPDATE ... WHERE status = 'pending'``) tell the winner by their row count, which
also holds across processes sharing the file.

WAL journal mode lets readers proceed while a write commits (the seed's synchronous audit
query reads through a second connection); ``synchronous=NORMAL`` is durable across
application crashes in WAL mode (only an OS crash may lose the last commits); the busy
timeout absorbs short lock waits from another process (the CLI reading the file).

The embedded store belongs to one process: at open, run leases that a previous process
left behind (it was killed while a stream ran) are void, so their sessions are usable.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiosqlite

from agent_runtime.errors import SessionAlreadyExists, SessionNotFound, StoreUnavailable
from agent_runtime.store import _rows
from agent_runtime.store.cluster import ClusterQueries
from agent_runtime.store.migrations import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew
from agent_runtime.store.queries import SharedQueries
from agent_runtime.store.records import (
    ApprovalRecord,
    FeedbackRecord,
    MessageRecord,
    RequestRecord,
    SessionRecord,
)
from agent_runtime.store.sqlite_outbox import SQLiteOutbox, insert_audit
from telemetry import AuditRecord

__all__ = ["SQLiteStore"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

BUSY_TIMEOUT_MS = 5_000

# Queries are literal constants: only values travel as parameters, never text.
_LIVE_SESSION = "EXISTS (SELECT 1 FROM sessions WHERE session_id = ? AND deleted_at IS NULL)"
_SELECT_APPROVALS = f"SELECT {_rows.APPROVAL_SELECT_COLUMNS} FROM approvals "
_INSERT_APPROVAL = (
    f"INSERT INTO approvals ({_rows.APPROVAL_COLUMNS}) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE " + _LIVE_SESSION
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (session_id, role, content, agent, created_at, tool_calls, "
    "tool_call_id, meta) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE " + _LIVE_SESSION
)
_SELECT_MESSAGES = (
    f"SELECT {_rows.MESSAGE_COLUMNS} FROM messages WHERE session_id = ? "
    "ORDER BY seq LIMIT ? OFFSET ?"
)
_DECIDE = (
    "UPDATE approvals SET status = 'decided', decision = ?, decided_arguments = ?, "
    "feedback = ?, outcome = ?, decided_at = ?, decided_by = ?, decided_in = ? "
    "WHERE call_id = ? AND status = 'pending'"
)
_INSERT_REQUEST = (
    f"INSERT OR IGNORE INTO served_requests ({_rows.REQUEST_COLUMNS}) "
    "SELECT ?, ?, ?, ?, ?, ?, ? WHERE " + _LIVE_SESSION
)
_INSERT_FEEDBACK = (
    f"INSERT INTO feedback ({_rows.FEEDBACK_COLUMNS}) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE " + _LIVE_SESSION
)


class SQLiteStore(SharedQueries, ClusterQueries, SQLiteOutbox):
    """:class:`~agent_runtime.store.Store` on one SQLite file (created with its folder)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()

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
        # migrations and multi-statement writes manage theirs explicitly.
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            await self._migrate(db)
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
            raise SchemaTooNew(current, SCHEMA_VERSION)
        for migration in MIGRATIONS[current:]:
            # executescript commits first, so the whole step runs in its own transaction.
            await db.executescript(
                f"BEGIN IMMEDIATE;\n{migration.sqlite}\n"
                "DELETE FROM schema_version;\n"
                f"INSERT INTO schema_version (version) VALUES ({migration.version});\nCOMMIT;"
            )

    async def close(self) -> None:
        """Idempotent; a transaction still running (its caller left: ``_atomic`` finishes it
        anyway) commits first, so closing never cuts one off."""
        async with self._lock:
            db, self._db = self._db, None
        if db is not None:
            await db.close()
        with self._reader_lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

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

    async def _atomic(self, work: Callable[[aiosqlite.Connection], Awaitable[_T]]) -> _T:
        """Run ``work`` in one write transaction, alone on the connection, and to its end
        even when the caller is cancelled (a client gone): a transaction interrupted between
        its BEGIN and its COMMIT would leave the shared connection inside it."""

        async def run() -> _T:
            async with self._lock:
                if self._db is None:  # closed before this began: nothing was started
                    raise StoreUnavailable("the store is closed")
                db = self._db
                await db.execute("BEGIN IMMEDIATE")
                try:
                    result = await work(db)
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
                await db.execute("COMMIT")
                return result

        task = asyncio.get_running_loop().create_task(run())
        task.add_done_callback(_log_unretrieved)
        return await asyncio.shield(task)

    async def _execute(self, sql: str, params: Iterable[Any]) -> aiosqlite.Cursor:
        """One write statement, in one trip to the connection's thread: its cursor (row
        count, last row id) is not closed (a second trip); it has no rows, and is freed
        with its last reference."""
        async with self._lock:
            return await self._conn.execute(sql, tuple(params))

    async def _write(self, sql: str, params: Iterable[Any]) -> int:
        """One write statement; its row count."""
        return (await self._execute(sql, params)).rowcount

    async def _fetch(self, sql: str, params: Iterable[Any]) -> list[aiosqlite.Row]:
        """Every row of one query, in one trip to the connection's thread (a cursor's
        execute, fetch and close would be three)."""
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, tuple(params)))

    # --- sessions ---------------------------------------------------------------------

    async def insert_session(self, record: SessionRecord) -> None:
        try:
            await self._write(
                "INSERT INTO sessions (session_id, created_at, agent, deleted_at) "
                "VALUES (?, ?, ?, ?)",
                (record.session_id, record.created_at, record.agent, record.deleted_at),
            )
        except sqlite3.IntegrityError as exc:
            raise SessionAlreadyExists.for_id(record.session_id) from exc

    async def soft_delete_session(
        self, session_id: str, deleted_at: float, *, audit: Sequence[AuditRecord] = ()
    ) -> bool:
        async def work(db: aiosqlite.Connection) -> bool:
            async with db.execute(
                "UPDATE sessions SET deleted_at = ? WHERE session_id = ? AND deleted_at IS NULL",
                (deleted_at, session_id),
            ) as cur:
                deleted = cur.rowcount > 0
            if deleted and audit:
                await insert_audit(db, audit)
            return deleted

        return await self._atomic(work)

    # --- the transcript -----------------------------------------------------------------

    async def append_message(self, record: MessageRecord) -> MessageRecord:
        cur = await self._execute(
            _INSERT_MESSAGE, (*_rows.message_values(record), record.session_id)
        )
        if cur.rowcount == 0:
            raise SessionNotFound.for_id(record.session_id)
        return replace(record, seq=cur.lastrowid or 0)

    async def list_messages(
        self, session_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[MessageRecord]:
        rows = await self._fetch(
            _SELECT_MESSAGES, (session_id, -1 if limit is None else limit, offset)
        )
        return [_rows.message_from_row(row) for row in rows]

    # --- approvals ------------------------------------------------------------------------

    async def insert_approval(self, record: ApprovalRecord) -> None:
        """Store a new approval; ``SessionNotFound`` if the session is gone.

        A duplicate ``call_id`` is a caller bug (call ids are unique per model call) and
        raises ``ValueError``.
        """
        try:
            inserted = await self._write(
                _INSERT_APPROVAL, (*_rows.approval_values(record), record.session_id)
            )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"approval {record.call_id!r} already exists") from exc
        if not inserted:
            raise SessionNotFound.for_id(record.session_id)

    async def list_pending_approvals(self, session_id: str | None) -> list[ApprovalRecord]:
        if session_id is None:
            rows = await self._fetch(
                _SELECT_APPROVALS + "WHERE status = 'pending' ORDER BY requested_at, rowid", ()
            )
        else:
            rows = await self._fetch(
                _SELECT_APPROVALS
                + "WHERE status = 'pending' AND session_id = ? ORDER BY requested_at, rowid",
                (session_id,),
            )
        return [_rows.approval_from_row(row) for row in rows]

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
        audit: Sequence[AuditRecord] = (),
        decided_in: str | None = None,
    ) -> bool:
        values = _rows.decision_values(
            decision, arguments, feedback, outcome, decided_at, decided_by, call_id, decided_in
        )

        async def work(db: aiosqlite.Connection) -> bool:
            async with db.execute(_DECIDE, values) as cur:
                won = cur.rowcount > 0
            if won and audit:
                await insert_audit(db, audit)
            return won

        return await self._atomic(work)

    # --- the audit outbox (telemetry.AuditOutbox; the rest in sqlite_outbox.py) ----------

    def query_audit_blocking(
        self, *, session_id: str | None, event_type: str | None, limit: int
    ) -> list[AuditRecord]:
        sql, params = self._audit_query(session_id, event_type, limit)
        with self._reader_lock:
            if self._reader is None:
                self._reader = sqlite3.connect(self.path, check_same_thread=False)
                self._reader.row_factory = sqlite3.Row
                self._reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            rows = self._reader.execute(sql, params).fetchall()
        return [_rows.audit_from_row(row) for row in reversed(rows)]

    # --- the requests served, and the feedback on them ----------------------------------------

    async def record_request(self, record: RequestRecord) -> None:
        await self._write(_INSERT_REQUEST, (*_rows.request_values(record), record.session_id))

    async def insert_feedback(
        self, record: FeedbackRecord, *, audit: Sequence[AuditRecord] = ()
    ) -> None:
        values = (*_rows.feedback_values(record), record.session_id)

        async def work(db: aiosqlite.Connection) -> bool:
            async with db.execute(_INSERT_FEEDBACK, values) as cur:
                inserted = cur.rowcount > 0
            if inserted and audit:
                await insert_audit(db, audit)
            return inserted

        if not await self._atomic(work):
            raise SessionNotFound.for_id(record.session_id)


def _log_unretrieved(task: asyncio.Task[Any]) -> None:
    """A transaction whose caller left before it ended and then failed: say so (not one the
    store's closing kept from starting: its caller owns the retry, as after any outage)."""
    if not task.cancelled() and not isinstance(task.exception(), (StoreUnavailable, type(None))):
        _log.error("a store transaction failed after its caller left", exc_info=task.exception())
