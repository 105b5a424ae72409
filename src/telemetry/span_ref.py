"""A span's identity as plain values, for code that stores it or hands it across requests.

A tool call that waits for a human keeps the waiting span's identity in the store, so a
decision that arrives later (in another request, after a restart, on another replica) can
link to it, land its audit record in that trace, and resume the run there. The service
stores these three values and gives them back; building OpenTelemetry span contexts and
formatting ids is this layer's job, not the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext, TraceFlags


@dataclass(frozen=True, slots=True)
class SpanRef:
    """A span's ``trace_id`` (32 hex), ``span_id`` (16 hex) and W3C ``trace_flags``."""

    trace_id: str
    span_id: str
    trace_flags: int = 0

    @classmethod
    def of(cls, span: Span) -> SpanRef:
        """The identity of ``span`` (all zeros for a non-recording span outside a trace)."""
        context = span.get_span_context()
        return cls(
            trace.format_trace_id(context.trace_id),
            trace.format_span_id(context.span_id),
            int(context.trace_flags),
        )

    @property
    def is_valid(self) -> bool:
        return self.span_context().is_valid

    def span_context(self) -> SpanContext:
        """The remote span context these values stand for (invalid when they are not hex)."""
        try:
            trace_id, span_id = int(self.trace_id, 16), int(self.span_id, 16)
        except ValueError:
            return trace.INVALID_SPAN_CONTEXT
        return SpanContext(
            trace_id, span_id, is_remote=True, trace_flags=TraceFlags(self.trace_flags & 0xFF)
        )
