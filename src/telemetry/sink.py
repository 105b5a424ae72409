"""The narrow interface domain services depend on to emit events."""

from __future__ import annotations

from typing import Literal, Protocol

from opentelemetry.trace import Span

from telemetry._audit_record import AuditRecord
from telemetry.events import TelemetryEvent
from telemetry.span_ref import SpanRef


class EventSink(Protocol):
    """Anything that records catalogue events; :class:`telemetry.Telemetry` is the real one.

    ``emit`` is synchronous, cheap, and never raises into the caller. ``span``: where the
    span event lands (the current span when omitted); ``origin``: the span the event
    belongs to when it is not ``span`` (a decision recorded in a later request belongs to
    the trace that waited for it). An event that acknowledges a human action is stored with
    its change: ``audit_record`` gives the record to store, ``emit(...,
    audit_record=...)`` then ships it. ``sinks``: ``audit`` or ``telemetry`` alone, when one
    decision's report is split between the replica that stored it and the one that waited.
    """

    def emit(
        self,
        event: TelemetryEvent,
        *,
        span: Span | None = None,
        origin: SpanRef | None = None,
        audit_record: AuditRecord | None = None,
        sinks: Literal["all", "audit", "telemetry"] = "all",
    ) -> None: ...

    def audit_record(
        self,
        event: TelemetryEvent,
        *,
        span: Span | None = None,
        origin: SpanRef | None = None,
    ) -> AuditRecord | None: ...
