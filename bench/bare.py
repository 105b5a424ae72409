"""The "no telemetry at all" floor: the layer's span factories and emit call replaced by
stubs, in the benchmark process only and for the runs that ask for it, so ``off - bare`` is
what the layer costs when it is disabled. Domain code still builds its pydantic events
(they also feed the SSE stream). :func:`unaudited` stubs out the audit trail alone, to
split that cost between the durable audit trail and the rest of the layer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, INVALID_SPAN_CONTEXT, Span, SpanContext

from telemetry import Telemetry, audit, emit, spans

_FACTORIES = ("request", "agent", "tool", "handoff", "decision")


class _NullRun:
    """Quacks like RequestSpan / AgentRun / ChatCall / ToolRun and records nothing."""

    span: Span = INVALID_SPAN
    correlation_id = "0" * 32

    def __init__(self, agent: str = "") -> None:
        self.agent = agent
        self.context = Context()
        self.ended = False

    @property
    def span_context(self) -> SpanContext:
        return INVALID_SPAN_CONTEXT

    def activate(self) -> AbstractContextManager[None]:
        return nullcontext()

    def chat(self, model: str, **kwargs: Any) -> _NullRun:
        return _NullRun()

    def first_chunk(self) -> None:
        return None

    def response(self, *args: Any) -> None:
        return None

    def usage(self, *args: Any) -> None:
        return None

    def stop(self, outcome: str = "") -> None:
        self.ended = True

    def fail(self, exc: BaseException) -> None:
        self.ended = True


def _null_factory(*args: Any, agent: str | None = None, **kwargs: Any) -> _NullRun:
    return _NullRun(agent or (args[1] if len(args) > 1 else ""))


@contextmanager
def _null_decision(*args: Any, **kwargs: Any) -> Iterator[Span]:
    yield INVALID_SPAN


def _null_emit(*args: Any, **kwargs: Any) -> None:
    return None


@contextmanager
def unaudited() -> Iterator[None]:
    """No audit record written (nor committed, nor shipped) while the block runs; the rest of
    the layer as it is."""
    saved = audit.AuditLog.write
    audit.AuditLog.write = _null_emit  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        audit.AuditLog.write = saved  # type: ignore[method-assign]


@contextmanager
def stripped(hub: Telemetry) -> Iterator[None]:
    """The layer's entry points as no-ops while the block runs (benchmark process only):
    the span factories and the emitter on their classes, and ``hub.emit``, which is the
    emitter's method bound when the hub was built."""
    saved = {name: getattr(spans.SpanFactory, name) for name in _FACTORIES}
    saved_emit, saved_hub_emit = emit.EventEmitter.emit, hub.emit
    emit.EventEmitter.emit = _null_emit  # type: ignore[method-assign]
    for name in ("request", "agent", "tool", "handoff"):
        setattr(spans.SpanFactory, name, _null_factory)
    spans.SpanFactory.decision = _null_decision  # type: ignore[method-assign]
    hub.emit = _null_emit
    try:
        yield
    finally:
        for name, factory in saved.items():
            setattr(spans.SpanFactory, name, factory)
        emit.EventEmitter.emit = saved_emit  # type: ignore[method-assign]
        hub.emit = saved_hub_emit
