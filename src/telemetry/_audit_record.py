"""One audit record: its shape, its SQLite table and row, and how a row reads back.

Kept apart from the outbox (:mod:`telemetry.audit`, which re-exports it): the record's
shape and storage format change for other reasons than when and how records are committed.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanContext

from telemetry.events import Attributes, TelemetryEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_records (
    record_id   TEXT PRIMARY KEY,
    ts          REAL NOT NULL,
    event_type  TEXT NOT NULL,
    session_id  TEXT,
    trace_id    TEXT NOT NULL,
    span_id     TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    summary     TEXT NOT NULL,
    exported_at REAL
);
CREATE INDEX IF NOT EXISTS audit_by_session ON audit_records (session_id, ts);
CREATE INDEX IF NOT EXISTS audit_by_type ON audit_records (event_type, ts);
CREATE INDEX IF NOT EXISTS audit_unexported ON audit_records (exported_at, ts);
"""

INSERT_RECORD = "INSERT INTO audit_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited event, as stored and as returned by the query API."""

    record_id: str
    timestamp: float
    event_type: str
    session_id: str | None
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    summary: str

    @classmethod
    def new(
        cls, event: TelemetryEvent, attributes: Attributes, context: SpanContext
    ) -> AuditRecord:
        """A fresh record for ``event``, belonging to the trace of ``context``."""
        return cls(
            record_id=uuid.uuid4().hex,
            timestamp=time.time(),
            event_type=event.name,
            session_id=event.session_id,
            trace_id=trace.format_trace_id(context.trace_id),
            span_id=trace.format_span_id(context.span_id),
            attributes=dict(attributes),
            summary=event.summary(),
        )

    def row(self) -> tuple[Any, ...]:
        """The ``audit_records`` row (``exported_at`` not included: it starts NULL)."""
        return (
            self.record_id,
            self.timestamp,
            self.event_type,
            self.session_id,
            self.trace_id,
            self.span_id,
            json.dumps(self.attributes),
            self.summary,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "timestamp": self.timestamp,
            "event_type": self.event_type,
            "session_id": self.session_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "attributes": self.attributes,
            "summary": self.summary,
        }


def record_from_row(row: tuple[Any, ...]) -> AuditRecord:
    return AuditRecord(
        record_id=row[0],
        timestamp=row[1],
        event_type=row[2],
        session_id=row[3],
        trace_id=row[4],
        span_id=row[5],
        attributes=json.loads(row[6]),
        summary=row[7],
    )
