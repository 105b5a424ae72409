"""One emit call, four sinks (docs/architecture.md).

Domain code hands a typed event to :meth:`EventEmitter.emit`; the span event, the metric
points, the durable audit record (with its OTel log record) and the in-process subscribers
all follow from that one call, so they cannot disagree. Telemetry never fails the caller:
each sink's failure is logged and the others still run.

The events that acknowledge a human action (``durable_before_ack``: a decision, a delete)
are stored with the change they record, in one transaction: the caller asks
:meth:`EventEmitter.audit_record` for the record first, has the store write it with its
change, then emits the event with that record (``audit_record=``), which only ships it.

The call is on every request's path (a dozen events a request), so it does only what some
sink reads: the event's attributes are built once, and only when the span records or the
audit trail needs them; the timeline is fed directly (it needs the trace id and one line);
a subscriber context is built only for events some subscriber wants, and formats its ids
only when one reads them.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from opentelemetry.trace import Span, SpanContext, get_current_span

from telemetry.audit import AuditLog, AuditRecord
from telemetry.events import TelemetryEvent
from telemetry.metrics import MetricsRecorder
from telemetry.settings import TelemetrySettings
from telemetry.span_ref import SpanRef
from telemetry.subscribers import SubscriberFanOut
from telemetry.timeline import TimelineRecorder

_log = logging.getLogger(__name__)
Sinks = Literal["all", "audit", "telemetry"]
"""Which sinks one emit feeds: ``all``; ``audit`` only (the record of a decision a stream on
another replica reports); ``telemetry`` only (that stream's report, the span event, metrics
and subscribers, of a decision whose record the deciding replica stored)."""
_Kind = tuple[str, bool, bool]
"""An event class's span-event name, ``on_span``, ``audited``."""


class EventEmitter:
    """Feeds every event to the span, the metrics, the audit trail and the subscribers."""

    def __init__(
        self,
        settings: TelemetrySettings,
        recorder: MetricsRecorder,
        audit: AuditLog | None,
        subscribers: SubscriberFanOut,
        timeline: TimelineRecorder | None = None,
    ) -> None:
        self._settings = settings
        self._recorder = recorder
        self._audit = audit
        self._subscribers = subscribers
        self._timeline = timeline
        self._kinds: dict[type[TelemetryEvent], _Kind] = {}

    def commit_audit(self) -> None:
        """A request has ended: its queued audit records are written now rather than at the
        flusher's next period. Never raises."""
        if self._audit is None:
            return
        try:
            self._audit.flush_soon()
        except Exception:
            _log.exception("audit flush could not be requested")

    def audit_record(
        self,
        event: TelemetryEvent,
        *,
        span: Span | None = None,
        origin: SpanContext | SpanRef | None = None,
    ) -> AuditRecord | None:
        """The audit record ``emit`` would write for ``event`` (None when it is not audited
        or no trail is kept), for a caller that stores it with the change it records and
        then emits the event with it."""
        if not event.audited or self._audit is None:
            return None
        context = _context(span, origin)
        return self._audit.build(
            event,
            event.attributes(self._settings),
            context,
            details=event.audit_details(self._settings),
        )

    def _kind_of(self, event: TelemetryEvent) -> _Kind:
        kind = (event.name, event.on_span, event.audited)
        self._kinds[type(event)] = kind
        return kind

    def emit(
        self,
        event: TelemetryEvent,
        *,
        span: Span | None = None,
        origin: SpanContext | SpanRef | None = None,
        audit_record: AuditRecord | None = None,
        sinks: Sinks = "all",
    ) -> None:
        """Record ``event`` everywhere it belongs.

        Args:
            event: the catalogue event.
            span: where the span event lands; the current span when omitted.
            origin: the span the event belongs to for audit and timeline, when it is not
                ``span``: a decision recorded in a later request still belongs to the trace
                of the request that waited for it (a :class:`SpanRef` as stored with the
                approval, or a span context).
            audit_record: the event's record, already stored by the caller with the change
                it records (see :meth:`audit_record`): it is shipped, not written again.
            sinks: ``all``, or one side only when two processes share one event's report:
                the replica that recorded a decision ships its ``audit`` record, the
                replica whose stream waited for it emits the ``telemetry`` (counted once).
        """
        # The class's flags in one lookup: reading three ClassVars off a pydantic model walks
        # its class hierarchy each time; the cached tuple is one dictionary lookup.
        kind = self._kinds.get(type(event)) or self._kind_of(event)
        name, on_span, audited = kind
        target = span if span is not None else get_current_span()
        attributes = None
        if sinks == "audit":
            on_span = False
        elif sinks == "telemetry":
            audited = False
        if on_span and target.is_recording():
            attributes = event.attributes(self._settings)
            target.add_event(name, attributes)
        if sinks != "audit":
            try:
                self._recorder.record(event)
            except Exception:
                _log.exception("metrics for %s failed", name)
        context = _context(target, origin)
        # The audit trail does not depend on tracing: with the SDK disabled the record is
        # still written, with the request's untraced trace id (all zeros outside a request).
        summary = None  # the one-line summary, formatted once for the audit and the timeline
        if audited and self._audit is not None:
            try:
                if attributes is None:
                    attributes = event.attributes(self._settings)
                summary = event.summary()
                if audit_record is not None:
                    self._audit.committed([audit_record])  # stored with its change: ship
                else:
                    self._audit.write(
                        event,
                        attributes,
                        context,
                        summary=summary,
                        details=event.audit_details(self._settings),
                    )
            except Exception:
                _log.exception("audit record for %s could not be written", name)
        if sinks == "audit":
            return
        now = time.time()
        # No trace (an event outside any request; a runtime driven without the HTTP layer,
        # which gives untraced requests ids of their own, with tracing off): every such event
        # has the all-zero trace id, so a timeline under it would mix unrelated stories.
        if self._timeline is not None and context.trace_id:
            try:
                self._timeline.record(
                    context.trace_id, now, name, event.summary() if summary is None else summary
                )
            except Exception:
                _log.exception("timeline entry for %s failed", name)
        self._subscribers.publish(event, context, now)


def _context(span: Span | None, origin: SpanContext | SpanRef | None) -> SpanContext:
    """The span context an event belongs to: ``origin``'s when given, else the span's (the
    current span when there is none)."""
    if isinstance(origin, SpanRef):
        return origin.context
    if origin is not None:
        return origin
    return (span if span is not None else get_current_span()).get_span_context()
