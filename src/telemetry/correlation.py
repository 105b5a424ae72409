"""The correlation id is the trace id: helpers that put it where people look.

Responses carry it as ``X-Correlation-ID`` and as W3C ``traceresponse``; every log line
carries trace and span id through :class:`TraceContextLogFilter`. Incoming ``traceparent``
handling is the W3C propagator's: a valid header continues the caller's trace, a malformed
one is ignored and the request starts a fresh trace. With telemetry off a request still
gets a trace id of its own (:func:`untraced_context`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags

CORRELATION_HEADER = "X-Correlation-ID"
TRACERESPONSE_HEADER = "traceresponse"
LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s] %(message)s"
)


def correlation_id(span: Span | None = None) -> str | None:
    """The 32-hex trace id of ``span`` (default: the current span), None outside a trace."""
    context = (span or trace.get_current_span()).get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def untraced_context(headers: Mapping[str, str]) -> Context | None:
    """The context to run a request in when nothing traces it, so that it still has a
    correlation id and a span id of its own; None when the current span is the server's.

    With telemetry off (``OTEL_SDK_DISABLED``) the API's no-op tracer gives every span the
    context of its parent, so without this every request would share the all-zero id: no
    ``X-Correlation-ID``, audit records and timelines that cannot tell requests apart. The
    request continues the caller's trace when its ``traceparent`` is valid (a malformed one
    is ignored, as the W3C propagator does), else starts a fresh random one; the span is
    non-recording either way, and its flags say not sampled.
    """
    current = trace.get_current_span().get_span_context()
    if current.is_valid and not current.is_remote:
        return None
    # A remote current span is the caller's, made current by the server instrumentation's
    # no-op tracer: continue its trace, but never answer with the caller's own span id.
    caller = current if current.is_valid else _caller(headers)
    ids = RandomIdGenerator()  # stateless: the SDK's random ids, as its tracer makes them
    trace_id = caller.trace_id if caller.is_valid else ids.generate_trace_id()
    context = SpanContext(
        trace_id,
        ids.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
        trace_state=caller.trace_state if caller.is_valid else None,
    )
    return trace.set_span_in_context(NonRecordingSpan(context))


def _caller(headers: Mapping[str, str]) -> SpanContext:
    return trace.get_current_span(propagate.extract(headers)).get_span_context()


def traceresponse(context: SpanContext) -> str:
    """The W3C Trace Context Level 2 ``traceresponse`` value for ``context``."""
    return (
        f"00-{trace.format_trace_id(context.trace_id)}-"
        f"{trace.format_span_id(context.span_id)}-{int(context.trace_flags):02x}"
    )


class TraceContextLogFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` of the current span to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        else:
            record.trace_id = record.span_id = "-"
        return True


def install_log_correlation(level: int = logging.INFO) -> None:
    """Make the root logger print trace and span ids on every line (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if any(isinstance(f, TraceContextLogFilter) for f in handler.filters):
            return
    handler = logging.StreamHandler()
    handler.addFilter(TraceContextLogFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
