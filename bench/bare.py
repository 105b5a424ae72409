"""The "no telemetry at all" floor.

:func:`strip` replaces one application's span factories and emit call by stubs, so
``off - bare`` is what the layer costs when it is disabled. Domain code still builds its
pydantic events (they also feed the SSE stream). (The off runtime without its audit trail,
which splits that cost between the durable audit trail and the rest of the layer, needs no
stub: ``Runtime.start(..., audit_trail=False)`` builds it.)

It works on the instances of one dedicated application, once, before the runs start; no
class is patched between runs: patching a class changes its type version and so
invalidates CPython's specialised attribute and method lookups on it, in every application
sharing the class, for the runs that follow (``bench/README.md``, History, has what that
did to the figures).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, INVALID_SPAN_CONTEXT, Span, SpanContext

import telemetry
from telemetry import Telemetry

_FACTORIES = ("request", "agent", "tool", "handoff")


class _NullRun:
    """Quacks like RequestSpan / AgentRun / ChatCall / ToolRun and records nothing (a
    ``RequestTrace`` over stubbed factories hands these out, its ``chat`` included)."""

    span: Span = INVALID_SPAN
    correlation_id = "0" * 32

    def __init__(self, agent: str = "") -> None:
        self.agent = agent
        self.context = Context()
        self.ended = False

    @property
    def span_context(self) -> SpanContext:
        return INVALID_SPAN_CONTEXT

    @property
    def span_ref(self) -> telemetry.SpanRef:
        return telemetry.SpanRef("0" * 32, "0" * 16)

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
    return _NullRun(agent or (args[0] if args else ""))


@contextmanager
def _null_decision(*args: Any, **kwargs: Any) -> Iterator[Span]:
    yield INVALID_SPAN


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


def strip(hub: Telemetry) -> None:
    """Make ``hub``'s span factories and emit call no-ops, for good (benchmark process only):
    on the factory instance, the emitter (which the span objects call) and ``hub.emit``
    (the emitter's method bound when the hub was built)."""
    for name in _FACTORIES:
        setattr(hub.spans, name, _null_factory)
    hub.spans.decision = _null_decision  # type: ignore[method-assign]
    hub.spans.emitter.emit = _nothing  # type: ignore[method-assign]
    hub.emit = _nothing
