"""The audit trail: written durably first, then shipped as OTel log records.

The local SQLite file (WAL) is both the outbox and the query source: a record is committed
before the request goes on, so a crash right after loses nothing, and a Collector outage
only delays the copy the audit backend gets. Records carry an id that the log record
repeats, so re-sending after an outage is idempotent downstream. The log exporter reports
which ids reached the Collector (:func:`acknowledge`); what stays unacknowledged is sent
again by :meth:`AuditLog.resend_unexported`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import Logger, SeverityNumber, get_logger
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from telemetry import names as n
from telemetry.events import Attributes, TelemetryEvent

_log = logging.getLogger(__name__)
_SCHEMA = """
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
_ack_listeners: list[Callable[[Sequence[str]], None]] = []


@dataclass(slots=True)
class DeliveryState:
    """What the process knows about shipping audit log records, for the re-send policy.

    ``enabled`` is False when no log exporter exists (``OTEL_LOGS_EXPORTER=none``, SDK
    disabled): re-sending would only feed a no-op. ``healthy`` is False after a failed
    export: while the Collector is down, re-sending the whole backlog every cycle only
    multiplies drops, so the outbox sends a small probe batch instead.
    """

    enabled: bool = True
    healthy: bool = True


delivery = DeliveryState()
RESEND_BATCH = 500
RESEND_PROBE = 20


def report_failed_delivery() -> None:
    """Called by the log exporter when a batch did not reach the Collector."""
    delivery.healthy = False


def acknowledge(record_ids: Sequence[str]) -> None:
    """Called by the log exporter once a batch reached the Collector."""
    delivery.healthy = True
    for listener in list(_ack_listeners):
        try:
            listener(record_ids)
        except Exception:  # an acknowledgement must never break the exporter thread
            _log.exception("audit acknowledgement failed")


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


class AuditLog:
    """Durable audit outbox over one SQLite file; safe to use from any thread."""

    def __init__(self, path: Path, *, logger: Logger | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._logger = logger or get_logger("agent_runtime.audit")
        _ack_listeners.append(self._mark_exported)

    def close(self) -> None:
        if self._mark_exported in _ack_listeners:
            _ack_listeners.remove(self._mark_exported)
        with self._lock:
            self._db.close()

    def write(
        self, event: TelemetryEvent, attributes: Attributes, context: SpanContext
    ) -> AuditRecord:
        """Commit the record, then emit it as a log record with ``context`` as its trace."""
        record = AuditRecord.new(event, attributes, context)
        with self._lock:
            self._db.execute(INSERT_RECORD, record.row())
        self._emit_log(record, context)
        return record

    def query(
        self, *, session_id: str | None = None, event_type: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """The newest ``limit`` records matching the filters, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT record_id, ts, event_type, session_id, trace_id, span_id, attributes,"
                " summary FROM audit_records"
                " WHERE (?1 IS NULL OR session_id = ?1) AND (?2 IS NULL OR event_type = ?2)"
                " ORDER BY ts DESC, rowid DESC LIMIT ?3",
                (session_id, event_type, max(0, limit)),
            ).fetchall()
        return [_row_to_record(row) for row in reversed(rows)]

    def unexported(self, *, older_than_s: float = 0.0, limit: int = -1) -> list[AuditRecord]:
        """The oldest records no exporter has acknowledged yet (the outbox's backlog);
        ``limit`` < 0 means all of them."""
        cutoff = time.time() - older_than_s
        with self._lock:
            rows = self._db.execute(
                "SELECT record_id, ts, event_type, session_id, trace_id, span_id, attributes,"
                " summary FROM audit_records WHERE exported_at IS NULL AND ts <= ? ORDER BY ts"
                " LIMIT ?",
                (cutoff, limit),
            ).fetchall()
        return [_row_to_record(row) for row in rows]

    def resend_unexported(self, *, older_than_s: float = 5.0, limit: int = -1) -> int:
        """Emit again the oldest records (at most ``limit``; < 0: all) still unacknowledged
        after ``older_than_s``."""
        records = self.unexported(older_than_s=older_than_s, limit=limit)
        for record in records:
            context = SpanContext(
                int(record.trace_id, 16),
                int(record.span_id, 16),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
            self._emit_log(record, context)
        return len(records)

    def _emit_log(self, record: AuditRecord, context: SpanContext) -> None:
        try:
            self._logger.emit(
                timestamp=int(record.timestamp * 1e9),
                context=trace.set_span_in_context(NonRecordingSpan(context)),
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                event_name=record.event_type,
                body=record.summary or record.event_type,
                attributes={
                    **_log_safe(record.attributes),
                    n.AUDIT_EVENT_TYPE: record.event_type,
                    n.AUDIT_RECORD_ID: record.record_id,
                    **({n.SESSION_ID: record.session_id} if record.session_id else {}),
                },
            )
        except Exception:  # the record is committed; shipping it again is the outbox's job
            _log.exception("audit log record could not be emitted")

    def _mark_exported(self, record_ids: Sequence[str]) -> None:
        if not record_ids:
            return
        now = time.time()
        with self._lock:
            self._db.executemany(
                "UPDATE audit_records SET exported_at = ? WHERE record_id = ?"
                " AND exported_at IS NULL",
                [(now, record_id) for record_id in record_ids],
            )


def _log_safe(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if isinstance(v, str | bool | int | float)}


def _row_to_record(row: tuple[Any, ...]) -> AuditRecord:
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
