"""The correlation id is the trace id: helpers that put it where people look.

Responses carry it as ``X-Correlation-ID`` and as W3C ``traceresponse``; every log line
carries trace and span id through :class:`TraceContextLogFilter`. Incoming ``traceparent``
handling is the W3C propagator's: a valid header continues the caller's trace, a malformed
one is ignored and the request starts a fresh trace.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext

CORRELATION_HEADER = "X-Correlation-ID"
TRACERESPONSE_HEADER = "traceresponse"
LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s] %(message)s"
)


def correlation_id(span: Span | None = None) -> str | None:
    """The 32-hex trace id of ``span`` (default: the current span), None outside a trace."""
    context = (span or trace.get_current_span()).get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


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
