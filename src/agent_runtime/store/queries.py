"""The store calls that are one statement, the same SQL on both backends.

Reading a session, its transcript's length, the run lease, an approval, the audit trail,
the requests served and their feedback: both stores run the same statement for each, only
their placeholder differs (``?`` for SQLite, ``%s`` for psycopg). They live here once, as a
mixin over each store's own ``_fetch`` and ``_write`` (the store keeps its connection
handling, its transactions and the statements whose SQL differs). Each store class gets its
statements formatted once, when the class is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from agent_runtime.errors import SessionNotFound
from agent_runtime.store import _rows
from agent_runtime.store.records import ApprovalRecord, FeedbackRecord, RequestRecord, SessionRecord
from telemetry import AuditRecord

__all__ = ["SharedQueries"]

_SELECT_APPROVALS = f"SELECT {_rows.APPROVAL_SELECT_COLUMNS} FROM approvals "
_SELECT_AUDIT = f"SELECT {_rows.AUDIT_COLUMNS} FROM audit_records "

# Templates: ``{p}`` is the backend's placeholder. Only values travel as parameters.
_TEMPLATES: Mapping[str, str] = {
    "get_session": "SELECT session_id, created_at, agent FROM sessions "
    "WHERE session_id = {p} AND deleted_at IS NULL",
    "set_session_agent": "UPDATE sessions SET agent = {p} "
    "WHERE session_id = {p} AND deleted_at IS NULL",
    "count_messages": "SELECT COUNT(*) AS n FROM messages WHERE session_id = {p}",
    "claim_session_run": "UPDATE sessions SET run_owner = {p}, run_until = {p} "
    "WHERE session_id = {p} AND deleted_at IS NULL "
    "AND (run_owner IS NULL OR run_owner = {p} OR run_until < {p})",
    "renew_session_run": "UPDATE sessions SET run_until = {p} "
    "WHERE session_id = {p} AND run_owner = {p}",
    "release_session_run": "UPDATE sessions SET run_owner = NULL, run_until = NULL "
    "WHERE session_id = {p} AND run_owner = {p}",
    "get_approval": _SELECT_APPROVALS + "WHERE call_id = {p}",
    "claim_resume": "UPDATE approvals SET resumed_by = {p}, resumed_at = {p} "
    "WHERE call_id = {p} AND status = 'decided' AND resumed_by IS NULL",
    "unresumed": _SELECT_APPROVALS + "WHERE status = 'decided' AND resumed_by IS NULL "
    "AND decided_at < {p} ORDER BY decided_at LIMIT {p}",
    "expired": _SELECT_APPROVALS + "WHERE status = 'pending' AND deadline < {p} "
    "ORDER BY deadline LIMIT {p}",
    "count_unshipped": "SELECT COUNT(*) AS n FROM audit_records WHERE exported_at IS NULL",
    # One statement per filter combination, so each uses its index (by seq, session, type).
    "audit": _SELECT_AUDIT + "ORDER BY seq DESC LIMIT {p}",
    "audit_session": _SELECT_AUDIT + "WHERE session_id = {p} ORDER BY seq DESC LIMIT {p}",
    "audit_type": _SELECT_AUDIT + "WHERE event_type = {p} ORDER BY seq DESC LIMIT {p}",
    "audit_session_type": _SELECT_AUDIT
    + "WHERE session_id = {p} AND event_type = {p} ORDER BY seq DESC LIMIT {p}",
    "get_request": f"SELECT {_rows.REQUEST_COLUMNS} FROM served_requests WHERE trace_id = {{p}} "
    "AND EXISTS (SELECT 1 FROM sessions WHERE sessions.session_id = served_requests.session_id "
    "AND deleted_at IS NULL) ORDER BY ended_at DESC LIMIT 1",
    "list_feedback": f"SELECT {_rows.FEEDBACK_COLUMNS} FROM feedback WHERE session_id = {{p}} "
    "ORDER BY seq DESC LIMIT {p}",
}
_AUDIT_BY_FILTER = {
    (False, False): "audit",
    (True, False): "audit_session",
    (False, True): "audit_type",
    (True, True): "audit_session_type",
}


class SharedQueries:
    """The one-statement calls of :class:`~agent_runtime.store.Store`, over a store's
    ``_fetch`` and ``_write``; ``placeholder`` (``?`` or ``%s``) is the store's."""

    placeholder: ClassVar[str] = "?"
    _sql: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._sql = {name: sql.format(p=cls.placeholder) for name, sql in _TEMPLATES.items()}

    async def _fetch(self, sql: str, params: Iterable[Any]) -> list[Any]:
        raise NotImplementedError  # the store's own

    async def _write(self, sql: str, params: Iterable[Any]) -> int:
        raise NotImplementedError  # the store's own

    # sessions and their transcripts
    async def get_session(self, session_id: str) -> SessionRecord | None:
        rows = await self._fetch(self._sql["get_session"], (session_id,))
        return _rows.session_from_row(rows[0]) if rows else None

    async def set_session_agent(self, session_id: str, agent: str | None) -> None:
        if not await self._write(self._sql["set_session_agent"], (agent, session_id)):
            raise SessionNotFound.for_id(session_id)

    async def count_messages(self, session_id: str) -> int:
        rows = await self._fetch(self._sql["count_messages"], (session_id,))
        return int(rows[0]["n"])

    # one run per session
    async def claim_session_run(
        self, session_id: str, owner: str, *, now: float, until: float
    ) -> bool:
        params = (owner, until, session_id, owner, now)
        return await self._write(self._sql["claim_session_run"], params) > 0

    async def renew_session_run(self, session_id: str, owner: str, *, until: float) -> bool:
        return await self._write(self._sql["renew_session_run"], (until, session_id, owner)) > 0

    async def release_session_run(self, session_id: str, owner: str) -> None:
        await self._write(self._sql["release_session_run"], (session_id, owner))

    # approvals
    async def get_approval(self, call_id: str) -> ApprovalRecord | None:
        rows = await self._fetch(self._sql["get_approval"], (call_id,))
        return _rows.approval_from_row(rows[0]) if rows else None

    async def claim_resume(self, call_id: str, owner: str, *, now: float) -> bool:
        return await self._write(self._sql["claim_resume"], (owner, now, call_id)) > 0

    async def list_unresumed_decisions(
        self, decided_before: float, limit: int
    ) -> list[ApprovalRecord]:
        rows = await self._fetch(self._sql["unresumed"], (decided_before, limit))
        return [_rows.approval_from_row(row) for row in rows]

    async def list_expired_approvals(self, now: float, limit: int) -> list[ApprovalRecord]:
        rows = await self._fetch(self._sql["expired"], (now, limit))
        return [_rows.approval_from_row(row) for row in rows]

    # the audit trail
    def _audit_query(
        self, session_id: str | None, event_type: str | None, limit: int
    ) -> tuple[str, tuple[Any, ...]]:
        """The statement and parameters of an audit query (newest first)."""
        sql = self._sql[_AUDIT_BY_FILTER[(session_id is not None, event_type is not None)]]
        params = tuple(v for v in (session_id, event_type) if v is not None)
        return sql, (*params, max(0, limit))

    async def query_audit(
        self, *, session_id: str | None, event_type: str | None, limit: int
    ) -> list[AuditRecord]:
        rows = await self._fetch(*self._audit_query(session_id, event_type, limit))
        return [_rows.audit_from_row(row) for row in reversed(rows)]

    async def count_unshipped(self) -> int:
        rows = await self._fetch(self._sql["count_unshipped"], ())
        return int(rows[0]["n"])

    # the requests served, and the feedback on them
    async def get_request(self, trace_id: str) -> RequestRecord | None:
        rows = await self._fetch(self._sql["get_request"], (trace_id,))
        return _rows.request_from_row(rows[0]) if rows else None

    async def list_feedback(self, session_id: str, *, limit: int = 1000) -> list[FeedbackRecord]:
        rows = await self._fetch(self._sql["list_feedback"], (session_id, max(0, limit)))
        return [_rows.feedback_from_row(row) for row in reversed(rows)]
