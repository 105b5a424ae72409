"""One audit record: its shape, the seed's JSON shape it is queried as, and the OTel log
record it is shipped as.

Kept apart from the outbox (:mod:`telemetry.audit`, which re-exports it): the record's
shape changes for other reasons than when and how records are written and shipped. How a
record is stored is the store's business (:class:`telemetry.outbox.AuditOutbox`); the
record's id is time-ordered (:func:`new_record_id`) so that a store's primary key index
takes consecutive records on the same, last, page.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import Logger, SeverityNumber
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from telemetry import names as n
from telemetry.events import Attributes, TelemetryEvent
from telemetry.span_ref import SpanRef, span_context_of

AUDIT_TYPES: Mapping[str, str] = {
    n.EVENT_AGENT_SWITCHED: n.AUDIT_AGENT_SWITCHED,
    n.EVENT_TOOL_APPROVAL_REQUIRED: n.AUDIT_TOOL_APPROVAL_REQUIRED,
    n.EVENT_HITL_APPROVAL_REQUESTED: n.AUDIT_HITL_APPROVAL_REQUESTED,
    n.EVENT_HITL_DECISION_MADE: n.AUDIT_HITL_DECISION_MADE,
    n.EVENT_AGENT_ERROR: n.AUDIT_AGENT_ERROR,
    n.EVENT_SESSION_DELETED: n.AUDIT_SESSION_DELETED,
    n.EVENT_EVALUATION_RESULT: n.AUDIT_USER_FEEDBACK,
}
"""The OTel event name of each audited event -> its audit record type (the seed's name)."""


def audit_type(event_type: str) -> str:
    """The record type a filter means: the seed's names as they are, an OTel event name
    (``hitl.decision_made``) translated to the seed's (``hitl_decision_made``)."""
    return AUDIT_TYPES.get(event_type, event_type)


_UUID7_BITS = 0x7 << 76 | 0x2 << 62
"""The version (7) and variant (RFC 9562) fields of a UUIDv7."""
_UUID7_CLEAR = ~(0xF << 76 | 0x3 << 62)


def new_record_id(timestamp: float) -> str:
    """A UUIDv7 in 32 hex digits (the shape ``uuid4().hex`` had): 48 bits of Unix time in
    ms, then 74 random bits, unique without coordination like a UUIDv4.

    Time-ordered so that the primary-key entries of consecutive records are neighbours in
    the index: with random ids every record of a batch dirties a leaf page of its own, which
    the commit has to write to the WAL. (Also cheaper to make than ``uuid4().hex``.)
    """
    random = int.from_bytes(os.urandom(10)) & _UUID7_CLEAR
    return f"{int(timestamp * 1000) << 80 | random | _UUID7_BITS:032x}"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited event, as stored and as returned by the query API.

    ``event_type`` is the seed's record type (``hitl_decision_made``), ``otel_name`` the
    event's OTel name (``hitl.decision_made``, the exported log record's event name);
    ``details`` are the event's own fields under the seed's names, ``attributes`` its OTel
    attributes.
    """

    record_id: str
    timestamp: float
    event_type: str
    session_id: str | None
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    summary: str
    otel_name: str = ""
    details: dict[str, Any] | None = None

    @classmethod
    def new(
        cls,
        event: TelemetryEvent,
        attributes: Attributes,
        context: SpanContext | SpanRef,
        summary: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """A fresh record for ``event``, belonging to the trace of ``context`` (a span context,
        or a stored :class:`~telemetry.SpanRef`); ``summary``: the event's, when the caller
        has already formatted it; ``details``: its seed fields
        (:meth:`~telemetry.events.TelemetryEvent.audit_details`)."""
        context = span_context_of(context)
        timestamp = time.time()
        return cls(
            record_id=new_record_id(timestamp),
            timestamp=timestamp,
            event_type=event.audit_type or event.name,
            session_id=event.session_id,
            trace_id=trace.format_trace_id(context.trace_id),
            span_id=trace.format_span_id(context.span_id),
            attributes=dict(attributes),
            summary=event.summary() if summary is None else summary,
            otel_name=event.name,
            details=details or {},
        )

    def matches(self, session_id: str | None, event_type: str | None) -> bool:
        """Whether a query with these filters (``event_type`` already a record type) keeps
        this record."""
        return (session_id is None or self.session_id == session_id) and (
            event_type is None or self.event_type == event_type
        )

    @property
    def span_ref(self) -> SpanRef:
        """The span the record's event belongs to; sampled, since audit records are never
        sampled out (the flags are not stored)."""
        return SpanRef(self.trace_id, self.span_id, int(TraceFlags.SAMPLED))

    def to_dict(self) -> dict[str, Any]:
        """The seed's record: ``timestamp`` (ISO 8601, UTC), ``event_type``, ``event_id``,
        ``session_id``, ``correlation_id`` (the trace id) and the event's own fields; then
        ours: the OTel event name and attributes, the span, the one-line summary."""
        return {
            "timestamp": iso_timestamp(self.timestamp),
            "event_type": self.event_type,
            "event_id": self.record_id,
            "session_id": self.session_id,
            "correlation_id": self.trace_id,
            **(self.details or {}),
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "record_id": self.record_id,
            "otel_event_name": self.otel_name,
            "attributes": self.attributes,
            "summary": self.summary,
        }


def iso_timestamp(epoch_s: float) -> str:
    """``2026-01-17T13:00:00.123Z``: ISO 8601 in UTC, milliseconds, with the ``Z`` the
    seed's records carry."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def emit_log_record(logger: Logger, record: AuditRecord) -> None:
    """``record`` as an OTel log record in its event's trace. It repeats the record id, so
    a downstream store can drop the copies that re-sending after an outage produces."""
    context = record.span_ref.context
    logger.emit(
        timestamp=int(record.timestamp * 1e9),
        context=trace.set_span_in_context(NonRecordingSpan(context)),
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        event_name=record.otel_name or record.event_type,
        body=record.summary or record.event_type,
        attributes={
            **_log_safe(record.attributes),
            n.AUDIT_EVENT_TYPE: record.event_type,
            n.AUDIT_RECORD_ID: record.record_id,
            **({n.SESSION_ID: record.session_id} if record.session_id else {}),
        },
    )


def _log_safe(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if isinstance(v, str | bool | int | float)}
