"""The store's schema, as numbered migrations for each backend.

Each migration takes a database from version ``n - 1`` to ``n``, in one transaction, and is
appended, never edited, so a database written by any release upgrades in place. A store
refuses to start against a database whose version is newer than the code knows (an older
release must not write to a schema it does not understand). On PostgreSQL the migrations
run under an advisory lock, so replicas starting at once migrate exactly once.

Versions:

1. sessions, messages, approvals (the first release)
2. the transcript as the run's state: handoff entries and tool outcomes (``meta``), resume
   claims (``resumed_by``), one run per session (``run_owner``, ``run_until``), who decided
3. the audit outbox, moved into the store from the audit trail's own file
4. the requests served (their trace and ``agent.request`` span) and people's feedback on them
5. replicas: the span a decision was recorded in (``decided_in``, so the replica whose stream
   waited can link its decision event to it)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "SchemaTooNew"]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer release than this one."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this release knows ({known}); "
            "upgrade agent-runtime"
        )


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sqlite: str
    postgres: str


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "sessions, messages, approvals",
        sqlite="""
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
        postgres="""
        CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            created_at DOUBLE PRECISION NOT NULL,
            agent TEXT,
            deleted_at DOUBLE PRECISION
        );
        CREATE TABLE messages (
            seq BIGSERIAL PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions (session_id),
            role TEXT NOT NULL,
            content TEXT,
            agent TEXT,
            created_at DOUBLE PRECISION NOT NULL,
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
            timeout_s DOUBLE PRECISION NOT NULL,
            requested_at DOUBLE PRECISION NOT NULL,
            deadline DOUBLE PRECISION NOT NULL,
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            trace_flags INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'decided')),
            decision TEXT,
            decided_arguments TEXT,
            feedback TEXT,
            outcome TEXT,
            decided_at DOUBLE PRECISION
        );
        CREATE INDEX approvals_by_status ON approvals (status, session_id, requested_at);
        """,
    ),
    Migration(
        2,
        "the transcript is the run's state; resume claims; one run per session",
        sqlite="""
        ALTER TABLE messages ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE approvals ADD COLUMN decided_by TEXT;
        ALTER TABLE approvals ADD COLUMN resumed_by TEXT;
        ALTER TABLE approvals ADD COLUMN resumed_at REAL;
        ALTER TABLE sessions ADD COLUMN run_owner TEXT;
        ALTER TABLE sessions ADD COLUMN run_until REAL;
        UPDATE approvals SET resumed_by = 'before-resumable-runs' WHERE status = 'decided';
        """,
        postgres="""
        ALTER TABLE messages ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE approvals ADD COLUMN decided_by TEXT;
        ALTER TABLE approvals ADD COLUMN resumed_by TEXT;
        ALTER TABLE approvals ADD COLUMN resumed_at DOUBLE PRECISION;
        ALTER TABLE sessions ADD COLUMN run_owner TEXT;
        ALTER TABLE sessions ADD COLUMN run_until DOUBLE PRECISION;
        UPDATE approvals SET resumed_by = 'before-resumable-runs' WHERE status = 'decided';
        """,
    ),
    Migration(
        3,
        "the audit outbox in the store",
        sqlite="""
        CREATE TABLE audit_records (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            record_id TEXT NOT NULL UNIQUE,
            ts REAL NOT NULL,
            event_type TEXT NOT NULL,
            session_id TEXT,
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            attributes TEXT NOT NULL,
            summary TEXT NOT NULL,
            otel_name TEXT NOT NULL DEFAULT '',
            details TEXT NOT NULL DEFAULT '{}',
            exported_at REAL,
            claimed_by TEXT,
            claimed_until REAL
        );
        CREATE INDEX audit_unshipped ON audit_records (seq) WHERE exported_at IS NULL;
        CREATE INDEX audit_by_session ON audit_records (session_id, seq);
        CREATE INDEX audit_by_type ON audit_records (event_type, seq);
        """,
        postgres="""
        CREATE TABLE audit_records (
            seq BIGSERIAL PRIMARY KEY,
            record_id TEXT NOT NULL UNIQUE,
            ts DOUBLE PRECISION NOT NULL,
            event_type TEXT NOT NULL,
            session_id TEXT,
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            attributes TEXT NOT NULL,
            summary TEXT NOT NULL,
            otel_name TEXT NOT NULL DEFAULT '',
            details TEXT NOT NULL DEFAULT '{}',
            exported_at DOUBLE PRECISION,
            claimed_by TEXT,
            claimed_until DOUBLE PRECISION
        );
        CREATE INDEX audit_unshipped ON audit_records (seq) WHERE exported_at IS NULL;
        CREATE INDEX audit_by_session ON audit_records (session_id, seq);
        CREATE INDEX audit_by_type ON audit_records (event_type, seq);
        """,
    ),
    Migration(
        4,
        "the requests served and the feedback given on them",
        sqlite="""
        CREATE TABLE served_requests (
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            trace_flags INTEGER NOT NULL,
            session_id TEXT NOT NULL REFERENCES sessions (session_id),
            agent TEXT,
            outcome TEXT NOT NULL,
            ended_at REAL NOT NULL,
            PRIMARY KEY (trace_id, span_id)
        );
        CREATE TABLE feedback (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            feedback_id TEXT NOT NULL UNIQUE,
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            session_id TEXT NOT NULL REFERENCES sessions (session_id),
            agent TEXT,
            name TEXT NOT NULL,
            score REAL NOT NULL CHECK (score >= 0 AND score <= 1),
            label TEXT,
            comment TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX feedback_by_session ON feedback (session_id, seq);
        CREATE INDEX feedback_by_trace ON feedback (trace_id, seq);
        """,
        postgres="""
        CREATE TABLE served_requests (
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            trace_flags INTEGER NOT NULL,
            session_id TEXT NOT NULL REFERENCES sessions (session_id),
            agent TEXT,
            outcome TEXT NOT NULL,
            ended_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (trace_id, span_id)
        );
        CREATE TABLE feedback (
            seq BIGSERIAL PRIMARY KEY,
            feedback_id TEXT NOT NULL UNIQUE,
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            session_id TEXT NOT NULL REFERENCES sessions (session_id),
            agent TEXT,
            name TEXT NOT NULL,
            score DOUBLE PRECISION NOT NULL CHECK (score >= 0 AND score <= 1),
            label TEXT,
            comment TEXT,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX feedback_by_session ON feedback (session_id, seq);
        CREATE INDEX feedback_by_trace ON feedback (trace_id, seq);
        """,
    ),
    Migration(
        5,
        "the span each decision was recorded in",
        sqlite="ALTER TABLE approvals ADD COLUMN decided_in TEXT;",
        postgres="ALTER TABLE approvals ADD COLUMN decided_in TEXT;",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))
