"""A stored reference to a span: what a pending approval keeps so that a later request, maybe
in another process after a restart, can link to the span that waited for it.

The service stores the three plain values (``trace_id``, ``span_id``, ``trace_flags``) and
hands a :class:`SpanRef` back to the telemetry layer (the decision span's link, ``emit``'s
``origin``, a resumed run's request links, audit records), so it never builds OpenTelemetry
span contexts or formats ids itself.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, TraceFlags

_HEX = frozenset(string.hexdigits.lower())


class HasSpan(Protocol):
    """Anything that holds a span: the run objects, the request span, a request's trace."""

    @property
    def span(self) -> Span: ...


@dataclass(frozen=True, slots=True)
class SpanRef:
    """A span's identity as plain values: ``trace_id`` (32 lowercase hex digits), ``span_id``
    (16) and the W3C ``trace_flags`` (an int; 1 = sampled).

    All zeros is the reference of "no span" (telemetry off); it is kept, stored and given back
    like any other, and the layer ignores it where a link would need a real span.
    """

    trace_id: str
    span_id: str
    trace_flags: int = 0

    def __post_init__(self) -> None:
        if len(self.trace_id) != 32 or not _HEX.issuperset(self.trace_id):
            raise ValueError(f"trace_id must be 32 lowercase hex digits, got {self.trace_id!r}")
        if len(self.span_id) != 16 or not _HEX.issuperset(self.span_id):
            raise ValueError(f"span_id must be 16 lowercase hex digits, got {self.span_id!r}")
        if not 0 <= self.trace_flags <= 0xFF:
            raise ValueError(f"trace_flags must be one byte, got {self.trace_flags!r}")

    @classmethod
    def of(cls, target: HasSpan | Span | SpanContext) -> SpanRef:
        """The reference of ``target``'s span: a run object (``AgentRun``, ``ToolRun``,
        ``ChatCall``), a ``RequestSpan`` or ``RequestTrace``, a span, or a span context."""
        if isinstance(target, SpanContext):
            context = target
        elif isinstance(target, Span):
            context = target.get_span_context()
        else:
            context = target.span.get_span_context()
        return cls(
            trace.format_trace_id(context.trace_id),
            trace.format_span_id(context.span_id),
            int(context.trace_flags),
        )

    @property
    def is_valid(self) -> bool:
        """False for the all-zero reference of a span that telemetry did not record."""
        return self.context.is_valid

    @property
    def correlation_id(self) -> str:
        """The trace id: what responses, log lines and audit records carry."""
        return self.trace_id

    @property
    def context(self) -> SpanContext:
        """The span context this reference stands for, remote (it comes from the store)."""
        return SpanContext(
            int(self.trace_id, 16),
            int(self.span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(self.trace_flags),
        )

    def link(self) -> Link:
        """A link to the referenced span."""
        return Link(self.context)


def span_context_of(target: SpanRef | SpanContext) -> SpanContext:
    """``target`` as a span context (the layer accepts either where a span is referred to)."""
    return target.context if isinstance(target, SpanRef) else target
