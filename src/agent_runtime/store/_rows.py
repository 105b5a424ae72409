"""Rows to records and back, the same for every backend.

Both stores keep the same columns (JSON as text, times as epoch seconds) and read rows as
mappings by column name, so the conversion lives here once; each store keeps only its SQL.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from agent_runtime.store.records import (
    ApprovalRecord,
    FeedbackRecord,
    MessageRecord,
    RequestRecord,
    SessionRecord,
)
from telemetry import AuditRecord


class Row(Protocol):
    """A row read by column name: ``sqlite3.Row`` (aiosqlite's) and psycopg's dict rows."""

    def __getitem__(self, key: str) -> Any: ...


APPROVAL_COLUMNS = (
    "call_id, session_id, tool, arguments, agent, reason, timeout_s, requested_at, deadline, "
    "trace_id, span_id, trace_flags, status, decision, decided_arguments, feedback, outcome, "
    "decided_at, decided_by, resumed_by"
)
APPROVAL_SELECT_COLUMNS = APPROVAL_COLUMNS + ", decided_in"
"""What a read of an approval selects: its insert's columns and what a decision adds."""
MESSAGE_COLUMNS = (
    "seq, session_id, role, content, agent, created_at, tool_calls, tool_call_id, meta"
)
AUDIT_COLUMNS = (
    "record_id, ts, event_type, session_id, trace_id, span_id, attributes, summary, otel_name, "
    "details"
)
REQUEST_COLUMNS = "trace_id, span_id, trace_flags, session_id, agent, outcome, ended_at"
FEEDBACK_COLUMNS = (
    "feedback_id, trace_id, span_id, session_id, agent, name, score, label, comment, created_at"
)


def session_from_row(row: Row) -> SessionRecord:
    return SessionRecord(row["session_id"], row["created_at"], row["agent"], None)


def message_values(record: MessageRecord) -> tuple[Any, ...]:
    """``session_id, role, content, agent, created_at, tool_calls, tool_call_id, meta``."""
    return (
        record.session_id,
        record.role,
        record.content,
        record.agent,
        record.created_at,
        json.dumps(record.tool_calls),
        record.tool_call_id,
        json.dumps(record.meta),
    )


def message_from_row(row: Row) -> MessageRecord:
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


def approval_values(record: ApprovalRecord) -> tuple[Any, ...]:
    """The values of :data:`APPROVAL_COLUMNS`, in order."""
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


def approval_from_row(row: Row) -> ApprovalRecord:
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
        decided_in=row["decided_in"],
    )


def audit_values(record: AuditRecord) -> tuple[Any, ...]:
    """The values of :data:`AUDIT_COLUMNS`, in order."""
    return (
        record.record_id,
        record.timestamp,
        record.event_type,
        record.session_id,
        record.trace_id,
        record.span_id,
        json.dumps(record.attributes),
        record.summary,
        record.otel_name,
        json.dumps(record.details or {}),
    )


def audit_from_row(row: Row) -> AuditRecord:
    return AuditRecord(
        record_id=row["record_id"],
        timestamp=row["ts"],
        event_type=row["event_type"],
        session_id=row["session_id"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        attributes=json.loads(row["attributes"]),
        summary=row["summary"],
        otel_name=row["otel_name"],
        details=json.loads(row["details"]),
    )


def decision_values(
    decision: str,
    arguments: dict[str, Any] | None,
    feedback: str | None,
    outcome: str | None,
    decided_at: float,
    decided_by: str | None,
    call_id: str,
    decided_in: str | None = None,
) -> tuple[Any, ...]:
    """The parameters of a decision's compare-and-set, in statement order."""
    return (
        decision,
        None if arguments is None else json.dumps(arguments),
        feedback,
        outcome,
        decided_at,
        decided_by,
        decided_in,
        call_id,
    )


def request_values(record: RequestRecord) -> tuple[Any, ...]:
    """The values of :data:`REQUEST_COLUMNS`, in order."""
    return (
        record.trace_id,
        record.span_id,
        record.trace_flags,
        record.session_id,
        record.agent,
        record.outcome,
        record.ended_at,
    )


def request_from_row(row: Row) -> RequestRecord:
    return RequestRecord(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        trace_flags=row["trace_flags"],
        session_id=row["session_id"],
        agent=row["agent"],
        outcome=row["outcome"],
        ended_at=row["ended_at"],
    )


def feedback_values(record: FeedbackRecord) -> tuple[Any, ...]:
    """The values of :data:`FEEDBACK_COLUMNS`, in order."""
    return (
        record.feedback_id,
        record.trace_id,
        record.span_id,
        record.session_id,
        record.agent,
        record.name,
        record.score,
        record.label,
        record.comment,
        record.created_at,
    )


def feedback_from_row(row: Row) -> FeedbackRecord:
    return FeedbackRecord(
        feedback_id=row["feedback_id"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        session_id=row["session_id"],
        agent=row["agent"],
        name=row["name"],
        score=row["score"],
        label=row["label"],
        comment=row["comment"],
        created_at=row["created_at"],
    )
