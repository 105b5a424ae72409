"""The one storage interface, and the function that picks its implementation.

Sessions, transcripts, pending approvals and the audit outbox live behind :class:`Store`,
so the service runs on embedded SQLite with zero set-up, and on PostgreSQL when
``DATABASE_URL`` says so (replicas sharing state); nothing above the store changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from agent_runtime.store.cluster import ClusterCounts
from agent_runtime.store.records import (
    ApprovalRecord,
    FeedbackRecord,
    MessageRecord,
    RequestRecord,
    SessionRecord,
)
from telemetry import AuditOutbox, AuditRecord

__all__ = ["DEFAULT_SQLITE_FILENAME", "Store", "StoreOptions", "open_store"]

DEFAULT_SQLITE_FILENAME = "agent-runtime.db"


@runtime_checkable
class Store(AuditOutbox, Protocol):
    """Durable state of the service. Every method is async and safe to call concurrently.

    Contract shared by all implementations:

    - ``open()`` prepares the backend (creates the schema) and must be awaited before any
      other call; ``close()`` releases it and is idempotent.
    - Lookups return ``None`` for what does not exist; a soft-deleted session does not exist.
    - ``insert_session`` raises :class:`~agent_runtime.errors.SessionAlreadyExists` when the
      id was ever used (deleted ids are not reused); writes to a missing or deleted session
      raise :class:`~agent_runtime.errors.SessionNotFound`.
    - ``record_decision`` is an atomic compare-and-set on ``status == 'pending'``: of two
      concurrent decisions exactly one returns ``True``; so is ``claim_resume`` on a decided
      call's ``resumed_by``, and ``claim_session_run`` on a session's run lease.
    - The changes that acknowledge a human action take their audit records
      (``record_decision(..., audit=)``, ``soft_delete_session(..., audit=)``,
      ``insert_feedback(..., audit=)``) and store them in the same transaction as the
      change, only when the change happens.
    - The audit outbox's contract is :class:`telemetry.AuditOutbox`'s.
    - A backend that cannot be reached raises
      :class:`~agent_runtime.errors.StoreUnavailable`; ``ping`` answers ``False``.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """``True`` when the backend answers a trivial query; used by ``/readyz``."""
        ...

    # sessions
    async def insert_session(self, record: SessionRecord) -> None: ...

    async def get_session(self, session_id: str) -> SessionRecord | None: ...

    async def set_session_agent(self, session_id: str, agent: str | None) -> None: ...

    async def soft_delete_session(
        self, session_id: str, deleted_at: float, *, audit: Sequence[AuditRecord] = ()
    ) -> bool:
        """Mark the session deleted (with ``audit``, in one transaction); ``False`` when it
        is missing or already deleted."""
        ...

    # the transcript
    async def append_message(self, record: MessageRecord) -> MessageRecord:
        """Append one transcript entry; returns it with its ``seq``. ``SessionNotFound``
        when the session is missing or deleted."""
        ...

    async def list_messages(
        self, session_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[MessageRecord]:
        """The session's transcript in the order it was appended (``limit`` None: all)."""
        ...

    async def count_messages(self, session_id: str) -> int: ...

    # one run per session at a time
    async def claim_session_run(
        self, session_id: str, owner: str, *, now: float, until: float
    ) -> bool:
        """Take the session's run lease until ``until`` (a compare-and-set): ``False`` when
        another owner holds a lease that has not expired at ``now`` (or the session is
        gone). The owner that holds it may claim it again."""
        ...

    async def renew_session_run(self, session_id: str, owner: str, *, until: float) -> bool:
        """Extend ``owner``'s lease; ``False`` when it no longer holds it."""
        ...

    async def release_session_run(self, session_id: str, owner: str) -> None:
        """Give the lease back (a no-op when ``owner`` does not hold it)."""
        ...

    # approvals
    async def insert_approval(self, record: ApprovalRecord) -> None: ...

    async def get_approval(self, call_id: str) -> ApprovalRecord | None: ...

    async def list_pending_approvals(self, session_id: str | None) -> list[ApprovalRecord]:
        """Pending approvals, oldest first; all sessions when ``session_id`` is ``None``."""
        ...

    async def list_expired_approvals(self, now: float, limit: int) -> list[ApprovalRecord]:
        """Pending approvals whose deadline passed before ``now``, oldest deadline first."""
        ...

    async def list_unresumed_decisions(
        self, decided_before: float, limit: int
    ) -> list[ApprovalRecord]:
        """Decided approvals whose run nobody claimed to resume, decided before
        ``decided_before`` (the deciding process died before it resumed the run)."""
        ...

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
        """Record the decision (with ``audit``, in one transaction) only if the approval is
        still pending; ``False`` otherwise. ``decided_in``: the span it was recorded in. The
        shared store announces it to the other replicas in the same transaction."""
        ...

    async def run_lease_alive(self, session_id: str, *, now: float) -> bool:
        """Whether a process holds the session's run lease at ``now`` (a run in progress, or
        a stream waiting for a human, which resumes the run itself)."""
        ...

    async def cluster_counts(self, *, now: float) -> ClusterCounts:
        """Sessions, running sessions and pending approvals of the whole deployment."""
        ...

    async def claim_resume(self, call_id: str, owner: str, *, now: float) -> bool:
        """Claim the right to resume the decided call's run (a compare-and-set): of all
        callers exactly one gets ``True``."""
        ...

    async def import_audit(self, records: Sequence[tuple[AuditRecord, float | None]]) -> int:
        """Audit records an older release kept in a file of its own, each with when the
        Collector acknowledged it; stored once (ids already here are skipped). Returns how
        many were new."""
        ...

    # the requests served, and people's feedback on their answers
    async def record_request(self, record: RequestRecord) -> None:
        """Remember a request that ran, with its ``agent.request`` span; stored once per
        (trace, span), and not at all when its session is missing or deleted."""
        ...

    async def get_request(self, trace_id: str) -> RequestRecord | None:
        """The request served in that trace (the latest, when a caller's ``traceparent``
        put several in one trace); ``None`` when none was, or its session was deleted."""
        ...

    async def insert_feedback(
        self, record: FeedbackRecord, *, audit: Sequence[AuditRecord] = ()
    ) -> None:
        """Store the feedback with ``audit``, in one transaction; ``SessionNotFound`` (and
        nothing stored) when the session is missing or deleted."""
        ...

    async def list_feedback(self, session_id: str, *, limit: int = 1000) -> list[FeedbackRecord]:
        """The session's newest ``limit`` feedback, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How to reach a database server (PostgreSQL; the embedded store ignores them)."""

    statement_timeout_s: float = 5.0
    connect_timeout_s: float = 3.0
    pool_size: int = 10
    on_connect: Callable[[Any], None] | None = None
    """Called with every new connection (the database client spans' instrumentation)."""
    notify_decisions: bool = True
    """Announce each decision to the other replicas (PostgreSQL NOTIFY); off, they poll."""


def open_store(
    database_url: str | None, data_dir: Path, options: StoreOptions | None = None
) -> Store:
    """Build (not open) the store ``DATABASE_URL`` asks for.

    ``None`` means the embedded default, ``data_dir / "agent-runtime.db"``; ``sqlite:///p``
    names a file (``sqlite:////abs/path`` for an absolute one, as SQLAlchemy spells it);
    ``postgresql://user:password@host:port/database`` (or ``postgres://``) the shared
    store. Error messages name the scheme only, never the URL, which may carry a password.
    """
    from agent_runtime.store.sqlite import SQLiteStore

    if database_url is None or not database_url.strip():
        return SQLiteStore(data_dir / DEFAULT_SQLITE_FILENAME)
    scheme, sep, rest = database_url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("DATABASE_URL must look like sqlite:///path or postgresql://...")
    if scheme == "sqlite":
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise ValueError("DATABASE_URL for SQLite must name a file: sqlite:///path/to.db")
        return SQLiteStore(Path(rest[1:]))
    if scheme in ("postgresql", "postgres"):
        from agent_runtime.store.postgres import PostgresStore

        options = options or StoreOptions()
        return PostgresStore(
            f"postgresql://{rest}",
            statement_timeout_s=options.statement_timeout_s,
            connect_timeout_s=options.connect_timeout_s,
            pool_size=options.pool_size,
            on_connect=options.on_connect,
            notify_decisions=options.notify_decisions,
        )
    raise ValueError(
        f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite, postgresql, or unset it)"
    )
