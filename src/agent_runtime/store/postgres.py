"""The shared store: PostgreSQL, through psycopg 3 and its connection pool.

Chosen by ``DATABASE_URL=postgresql://user:password@host:port/database``: every replica of
the service reads and writes the same sessions, transcripts, approvals and audit outbox.

Why it keeps working when the database does not:

- The service starts whether or not the database answers. Until the schema is migrated
  (at start-up, or as soon as the database is reachable) ``ping`` is ``False`` (``/readyz``
  503) and every call raises :class:`~agent_runtime.errors.StoreUnavailable` (503), never
  a 500.
- Connections are checked when taken from the pool, so after a database restart the dead
  ones are replaced and the pool reconnects by itself. A statement is bounded by the
  server-side ``statement_timeout``, and waiting for a connection by the pool's timeout: no
  request hangs on the database.
- The URL may hold a password: it is never logged, put in an error or in a span (the
  database client spans carry the host, port, database and user only).

Migrations run under an advisory lock (replicas starting together migrate once); a
database whose schema is newer than this release refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import psycopg
import psycopg.errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent_runtime.errors import SessionAlreadyExists, SessionNotFound, StoreUnavailable
from agent_runtime.store import _rows
from agent_runtime.store.cluster import DECISION_CHANNEL, ClusterQueries
from agent_runtime.store.migrations import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew
from agent_runtime.store.postgres_outbox import PostgresOutbox, insert_audit
from agent_runtime.store.queries import SharedQueries
from agent_runtime.store.records import (
    ApprovalRecord,
    FeedbackRecord,
    MessageRecord,
    RequestRecord,
    SessionRecord,
)
from telemetry import AuditRecord, suppress_client_spans

__all__ = ["PostgresStore", "redacted_url"]

_log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x61676E74  # "agnt": the advisory lock the migrations run under
_RETRY_S = (0.5, 1.0, 2.0, 5.0)
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.errors.QueryCanceled,
    PoolTimeout,
    OSError,
)
_UNAVAILABLE_OR_SLOW: tuple[type[BaseException], ...] = (*_UNAVAILABLE, TimeoutError)

_LIVE_SESSION = "EXISTS (SELECT 1 FROM sessions WHERE session_id = %s AND deleted_at IS NULL)"
_SELECT_APPROVALS = f"SELECT {_rows.APPROVAL_SELECT_COLUMNS} FROM approvals "
_INSERT_APPROVAL = (
    f"INSERT INTO approvals ({_rows.APPROVAL_COLUMNS}) "
    "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s "
    "WHERE " + _LIVE_SESSION
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (session_id, role, content, agent, created_at, tool_calls, "
    "tool_call_id, meta) SELECT %s, %s, %s, %s, %s, %s, %s, %s WHERE "
    + _LIVE_SESSION
    + " RETURNING seq"
)
_SELECT_MESSAGES = (
    f"SELECT {_rows.MESSAGE_COLUMNS} FROM messages WHERE session_id = %s "
    "ORDER BY seq LIMIT %s OFFSET %s"
)
_DECIDE = (
    "UPDATE approvals SET status = 'decided', decision = %s, decided_arguments = %s, "
    "feedback = %s, outcome = %s, decided_at = %s, decided_by = %s, decided_in = %s "
    "WHERE call_id = %s AND status = 'pending'"
)
_INSERT_REQUEST = (
    f"INSERT INTO served_requests ({_rows.REQUEST_COLUMNS}) "
    "SELECT %s, %s, %s, %s, %s, %s, %s WHERE " + _LIVE_SESSION + " ON CONFLICT DO NOTHING"
)
_INSERT_FEEDBACK = (
    f"INSERT INTO feedback ({_rows.FEEDBACK_COLUMNS}) "
    "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s WHERE " + _LIVE_SESSION
)

ConnectionHook = Callable[[psycopg.AsyncConnection[Any]], None]
"""Called with every new connection of the pool (the database client spans' instrumentation)."""


def redacted_url(url: str) -> str:
    """``postgresql://host:port/database``: the URL without its user and password, for
    messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class PostgresStore(SharedQueries, ClusterQueries, PostgresOutbox):
    """:class:`~agent_runtime.store.Store` on a PostgreSQL database (``DATABASE_URL``)."""

    placeholder = "%s"

    def __init__(
        self,
        url: str,
        *,
        statement_timeout_s: float = 5.0,
        connect_timeout_s: float = 3.0,
        pool_size: int = 10,
        on_connect: ConnectionHook | None = None,
        notify_decisions: bool = True,
    ) -> None:
        """``notify_decisions``: announce each decision on :data:`DECISION_CHANNEL` in its
        transaction (off: the replicas' waiters find it by polling alone)."""
        self._url = url
        self._notify_decisions = notify_decisions
        self._where = redacted_url(url)
        self._connect_timeout_s = connect_timeout_s
        self._statement_timeout_ms = max(1, int(statement_timeout_s * 1000))
        self._on_connect = on_connect
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs=self._connection_kwargs(),
            configure=self._configure,
            check=_check_connection,
            timeout=connect_timeout_s + statement_timeout_s,
            reconnect_timeout=0,  # keep trying for as long as the database is away
        )
        self._ready = False
        self._fatal: BaseException | None = None
        self._migrating = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self._reader: psycopg.Connection[Any] | None = None
        self._reader_lock = threading.Lock()

    def _connection_kwargs(self) -> dict[str, Any]:
        return {
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": max(1, int(self._connect_timeout_s)),
            "options": f"-c statement_timeout={self._statement_timeout_ms}",
        }

    async def _configure(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if self._on_connect is not None:
            self._on_connect(connection)

    # --- life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool and migrate; a database that does not answer yet is retried in the
        background (the store stays unavailable until then). A newer schema raises."""
        await self._pool.open(wait=False)
        try:
            async with asyncio.timeout(self._connect_timeout_s * 2):
                await self._migrate()
        except SchemaTooNew:
            await self._pool.close()
            raise
        except _UNAVAILABLE_OR_SLOW as exc:
            _log.warning(
                "the database at %s does not answer (%s); retrying in the background",
                self._where,
                type(exc).__name__,
            )
            self._retry = asyncio.get_running_loop().create_task(self._migrate_until_ready())

    async def _migrate_until_ready(self) -> None:
        attempt = 0
        while not self._ready and self._fatal is None:
            await asyncio.sleep(_RETRY_S[min(attempt, len(_RETRY_S) - 1)])
            attempt += 1
            try:
                await self._migrate()
                _log.info("the database at %s answers; store ready", self._where)
            except SchemaTooNew as exc:
                self._fatal = exc
                _log.error("%s: the store stays unavailable", exc)
            except _UNAVAILABLE_OR_SLOW:
                continue

    async def _migrate(self) -> None:
        with suppress_client_spans():  # start-up's statements: no request's, no trace
            await self._migrate_once()

    async def _migrate_once(self) -> None:
        async with self._migrating:
            if self._ready:
                return
            async with self._pool.connection() as conn:
                await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
                try:
                    await conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
                    )
                    cur = await conn.execute("SELECT version FROM schema_version")
                    row = await cur.fetchone()
                    current = int(row["version"]) if row is not None else 0
                    if current > SCHEMA_VERSION:
                        raise SchemaTooNew(current, SCHEMA_VERSION)
                    for migration in MIGRATIONS[current:]:
                        async with conn.transaction():
                            await conn.execute(migration.postgres.encode())
                            await conn.execute("DELETE FROM schema_version")
                            await conn.execute(
                                "INSERT INTO schema_version (version) VALUES (%s)",
                                (migration.version,),
                            )
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
            self._ready = True

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
        await self._pool.close()
        with self._reader_lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    async def ping(self) -> bool:
        if not self._ready:
            return False
        try:
            async with self._conn() as conn:
                await conn.execute("SELECT 1")
        except StoreUnavailable:
            return False
        return True

    async def schema_version(self) -> int:
        rows = await self._fetch("SELECT version FROM schema_version", ())
        return int(rows[0]["version"]) if rows else 0

    # --- connections ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; a database that does not answer is ``StoreUnavailable``."""
        if not self._ready:
            if self._fatal is not None:
                raise StoreUnavailable("the database schema is newer than this release")
            raise StoreUnavailable()
        try:
            async with self._pool.connection() as conn:
                yield conn
        except _UNAVAILABLE as exc:
            raise StoreUnavailable() from exc

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._conn() as conn, conn.transaction():
            yield conn

    async def _write(self, sql: str, params: Iterable[Any]) -> int:
        async with self._conn() as conn:
            cur = await conn.execute(sql, tuple(params))
            return cur.rowcount

    async def _fetch(self, sql: str, params: Iterable[Any]) -> list[dict[str, Any]]:
        async with self._conn() as conn:
            cur = await conn.execute(sql, tuple(params))
            return list(await cur.fetchall())

    @contextlib.contextmanager
    def _blocking(self) -> Iterator[psycopg.Connection[Any]]:
        """The one synchronous connection, for the seed's synchronous audit query."""
        with self._reader_lock:
            try:
                if self._reader is None or self._reader.closed:
                    self._reader = psycopg.connect(self._url, **self._connection_kwargs())
                yield self._reader
            except _UNAVAILABLE as exc:
                if self._reader is not None:
                    self._reader.close()
                self._reader = None
                raise StoreUnavailable() from exc

    # --- sessions ------------------------------------------------------------------------

    async def insert_session(self, record: SessionRecord) -> None:
        try:
            await self._write(
                "INSERT INTO sessions (session_id, created_at, agent, deleted_at) "
                "VALUES (%s, %s, %s, %s)",
                (record.session_id, record.created_at, record.agent, record.deleted_at),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise SessionAlreadyExists.for_id(record.session_id) from exc

    async def soft_delete_session(
        self, session_id: str, deleted_at: float, *, audit: Sequence[AuditRecord] = ()
    ) -> bool:
        async with self._transaction() as conn:
            cur = await conn.execute(
                "UPDATE sessions SET deleted_at = %s WHERE session_id = %s AND deleted_at IS NULL",
                (deleted_at, session_id),
            )
            deleted = cur.rowcount > 0
            if deleted and audit:
                await insert_audit(conn, audit)
        return deleted

    # --- the transcript ---------------------------------------------------------------------

    async def append_message(self, record: MessageRecord) -> MessageRecord:
        async with self._conn() as conn:
            cur = await conn.execute(
                _INSERT_MESSAGE, (*_rows.message_values(record), record.session_id)
            )
            row = await cur.fetchone()
        if row is None:
            raise SessionNotFound.for_id(record.session_id)
        return replace(record, seq=int(row["seq"]))

    async def list_messages(
        self, session_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[MessageRecord]:
        rows = await self._fetch(_SELECT_MESSAGES, (session_id, limit, offset))
        return [_rows.message_from_row(row) for row in rows]

    # --- approvals -----------------------------------------------------------------------

    async def insert_approval(self, record: ApprovalRecord) -> None:
        try:
            inserted = await self._write(
                _INSERT_APPROVAL, (*_rows.approval_values(record), record.session_id)
            )
        except psycopg.errors.UniqueViolation as exc:
            raise ValueError(f"approval {record.call_id!r} already exists") from exc
        if not inserted:
            raise SessionNotFound.for_id(record.session_id)

    async def list_pending_approvals(self, session_id: str | None) -> list[ApprovalRecord]:
        if session_id is None:
            rows = await self._fetch(
                _SELECT_APPROVALS + "WHERE status = 'pending' ORDER BY requested_at, call_id",
                (),
            )
        else:
            rows = await self._fetch(
                _SELECT_APPROVALS + "WHERE status = 'pending' AND session_id = %s "
                "ORDER BY requested_at, call_id",
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
        async with self._transaction() as conn:
            cur = await conn.execute(_DECIDE, values)
            won = cur.rowcount > 0
            if won and audit:
                await insert_audit(conn, audit)
            if won and self._notify_decisions:  # delivered when (and only if) this commits
                await conn.execute("SELECT pg_notify(%s, %s)", (DECISION_CHANNEL, call_id))
        return won

    # --- the audit outbox (telemetry.AuditOutbox; the rest in postgres_outbox.py) -------

    def query_audit_blocking(
        self, *, session_id: str | None, event_type: str | None, limit: int
    ) -> list[AuditRecord]:
        sql, params = self._audit_query(session_id, event_type, limit)
        with self._blocking() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_rows.audit_from_row(row) for row in reversed(rows)]

    # --- the requests served, and the feedback on them ------------------------------------

    async def record_request(self, record: RequestRecord) -> None:
        await self._write(_INSERT_REQUEST, (*_rows.request_values(record), record.session_id))

    async def insert_feedback(
        self, record: FeedbackRecord, *, audit: Sequence[AuditRecord] = ()
    ) -> None:
        async with self._transaction() as conn:
            cur = await conn.execute(
                _INSERT_FEEDBACK, (*_rows.feedback_values(record), record.session_id)
            )
            inserted = cur.rowcount > 0
            if inserted and audit:
                await insert_audit(conn, audit)
        if not inserted:
            raise SessionNotFound.for_id(record.session_id)


async def _check_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's check of a connection it hands out (a dead one is replaced), without a
    client span: one per store call, it would double the request's database spans."""
    with suppress_client_spans():
        await AsyncConnectionPool.check_connection(conn)
