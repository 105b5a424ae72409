"""One named factory per operation: the request, an agent run, a tool call, a handoff, a
human decision.

Each returns an object with ``stop()`` and ``fail()`` because these spans outlive any
``with`` block (an SSE stream, a HITL wait across requests); both are idempotent, so the
request's finaliser can end whatever is still open, exactly once, on any path. The agent
and tool spans are ``opentelemetry-util-genai`` invocations, which bring the GenAI
attributes and the ``gen_ai.invoke_agent.duration`` / ``gen_ai.execute_tool.duration``
metrics. None of them attaches itself to the context: a stream resumes in other tasks, so
callers pass ``context`` explicitly or wrap a step in ``activate()``.

    run = spans.agent("coder", conversation_id=session_id, parent=request.context)
    try:
        with run.activate():
            ...  # the chat span of the model call nests under the agent
        run.stop(outcome="completed")
    except Exception as exc:
        run.fail(exc)
        raise
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.genai.handler import TelemetryHandler
from opentelemetry.util.genai.invocation import LocalAgentInvocation, ToolInvocation
from opentelemetry.util.genai.types import Error

from telemetry import names as n
from telemetry.emit import EventEmitter
from telemetry.events import (
    AgentErrorOccurred,
    AgentProcessingCompleted,
    AgentProcessingStarted,
    ToolExecutionCompleted,
    ToolOutcome,
)
from telemetry.redaction import scrub


def error_type(exc: BaseException) -> str:
    """``error.type`` for an exception: its qualified class name (semconv's advice)."""
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _safe_error(exc: BaseException) -> Error:
    """Provider errors echo keys: the status and the exception event carry scrubbed text."""
    return Error(message=scrub(str(exc))[:512], type=error_type(exc))


def _fail_span(span: Span, exc: BaseException) -> None:
    span.record_exception(
        exc,
        attributes={
            "exception.message": scrub(str(exc))[:512],
            "exception.stacktrace": scrub("".join(traceback.format_exception(exc)))[-4096:],
        },
    )
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    span.set_attribute(n.ERROR_TYPE, error_type(exc))


@contextmanager
def _activated(ctx: Context) -> Iterator[None]:
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


class RequestSpan:
    """``agent.request``: one user message, from arrival to the last SSE event."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.context: Context = trace.set_span_in_context(span)
        self._ended = False

    @property
    def correlation_id(self) -> str:
        """The trace id, 32 hex: what every response, log line and audit record carries."""
        return trace.format_trace_id(self.span.get_span_context().trace_id)

    @property
    def ended(self) -> bool:
        return self._ended

    def activate(self) -> AbstractContextManager[None]:
        return _activated(self.context)

    def stop(self, outcome: str) -> None:
        if self._ended:
            return
        self._ended = True
        self.span.set_attribute(n.REQUEST_OUTCOME, outcome)
        self.span.end()

    def fail(self, exc: BaseException) -> None:
        if self._ended:
            return
        _fail_span(self.span, exc)
        self.stop(n.OUTCOME_ERROR)


class AgentRun:
    """``invoke_agent {agent}``: its start and end are AgentProcessingStarted/Completed."""

    def __init__(
        self,
        invocation: LocalAgentInvocation,
        agent: str,
        emitter: EventEmitter,
        session_id: str | None,
    ) -> None:
        self._invocation = invocation
        self._emitter = emitter
        self._started = time.monotonic()
        self.agent = agent
        self.session_id = session_id
        self.span: Span = invocation.span
        self.context: Context = invocation.context
        self._ended = False
        emitter.emit(AgentProcessingStarted(agent=agent, session_id=session_id), span=self.span)

    @property
    def ended(self) -> bool:
        return self._ended

    def activate(self) -> AbstractContextManager[None]:
        return _activated(self.context)

    def stop(self, outcome: str = n.OUTCOME_COMPLETED) -> None:
        """End normally; ``outcome`` (completed, handed_off, rejected, disconnected…) is not
        an error whatever its value."""
        if self._ended:
            return
        self._ended = True
        self.span.set_attribute(n.AGENT_OUTCOME, outcome)
        self._invocation.stop()
        self._completed(outcome)

    def fail(self, exc: BaseException) -> None:
        """End with status ERROR, the exception recorded and AgentErrorOccurred emitted."""
        if self._ended:
            return
        self._ended = True
        _fail_span(self.span, exc)
        self.span.set_attribute(n.AGENT_OUTCOME, n.OUTCOME_ERROR)
        self._emitter.emit(
            AgentErrorOccurred(
                agent=self.agent,
                error_type=error_type(exc),
                message=str(exc),
                session_id=self.session_id,
            ),
            span=self.span,
        )
        self._invocation.fail(_safe_error(exc))
        self._completed(n.OUTCOME_ERROR)

    def _completed(self, outcome: str) -> None:
        self._emitter.emit(
            AgentProcessingCompleted(
                agent=self.agent,
                duration_s=time.monotonic() - self._started,
                outcome=outcome,
                session_id=self.session_id,
            ),
            span=self.span,
        )


class ToolRun:
    """``execute_tool {tool}``: stays open while the call waits for a human."""

    def __init__(
        self,
        invocation: ToolInvocation,
        tool: str,
        call_id: str,
        emitter: EventEmitter,
        session_id: str | None,
    ) -> None:
        self._invocation = invocation
        self._emitter = emitter
        self._started = time.monotonic()
        self.tool = tool
        self.call_id = call_id
        self.session_id = session_id
        self.span: Span = invocation.span
        self.context: Context = invocation.context
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def span_context(self) -> SpanContext:
        return self.span.get_span_context()

    def activate(self) -> AbstractContextManager[None]:
        return _activated(self.context)

    def stop(self, outcome: ToolOutcome | str = "completed") -> None:
        """End normally: ``completed``, ``rejected`` (a human said no), or ``disconnected``."""
        if self._ended:
            return
        self._ended = True
        self.span.set_attribute(n.TOOL_OUTCOME, outcome)
        self._invocation.stop()
        if outcome in ("completed", "rejected"):
            self._completed(outcome)

    def fail(self, exc: BaseException) -> None:
        """The tool itself failed (refused path, command error): status ERROR."""
        if self._ended:
            return
        self._ended = True
        _fail_span(self.span, exc)
        self.span.set_attribute(n.TOOL_OUTCOME, "failed")
        self._invocation.fail(_safe_error(exc))
        self._completed("failed")

    def _completed(self, outcome: ToolOutcome) -> None:
        self._emitter.emit(
            ToolExecutionCompleted(
                tool=self.tool,
                call_id=self.call_id,
                outcome=outcome,
                duration_s=time.monotonic() - self._started,
                session_id=self.session_id,
            ),
            span=self.span,
        )


class SpanFactory:
    """Creates the service's spans; the only place that knows tracer and GenAI handler."""

    def __init__(self, emitter: EventEmitter, tracer: Tracer, handler: TelemetryHandler) -> None:
        self._emitter = emitter
        self._tracer = tracer
        self._handler = handler

    def request(self, session_id: str, *, context: Context | None = None) -> RequestSpan:
        """``agent.request`` under the current (server) span; ids for sampling at start."""
        span = self._tracer.start_span(
            n.SPAN_AGENT_REQUEST,
            context=context,
            kind=SpanKind.INTERNAL,
            attributes={n.GEN_AI_CONVERSATION_ID: session_id, n.SESSION_ID: session_id},
        )
        return RequestSpan(span)

    def agent(self, agent: str, *, conversation_id: str, parent: Context) -> AgentRun:
        """``invoke_agent {agent}`` as a child of ``parent``."""
        invocation = self._handler.invoke_local_agent(
            agent_name=agent,
            conversation_id=conversation_id,
            context=parent,
            _attach_to_context=False,
        )
        invocation.span.set_attribute(n.GEN_AI_AGENT_NAME, agent)
        return AgentRun(invocation, agent, self._emitter, conversation_id)

    def tool(
        self, tool: str, call_id: str, *, agent: str, parent: Context, session_id: str | None
    ) -> ToolRun:
        """``execute_tool {tool}`` as a child of the agent's span."""
        invocation = self._handler.tool(
            tool,
            tool_type="function",
            agent_name=agent,
            tool_call_id=call_id,
            context=parent,
            _attach_to_context=False,
        )
        invocation.span.set_attributes({n.GEN_AI_TOOL_NAME: tool, n.GEN_AI_TOOL_CALL_ID: call_id})
        return ToolRun(invocation, tool, call_id, self._emitter, session_id)

    def handoff(
        self,
        from_agent: str,
        to_agent: str,
        call_id: str,
        *,
        parent: Context,
        session_id: str | None,
    ) -> ToolRun:
        """``execute_tool transfer_to_{agent}``: an agent asked to hand over (peers' shape)."""
        run = self.tool(
            f"{n.HANDOFF_TOOL_PREFIX}{to_agent}",
            call_id,
            agent=from_agent,
            parent=parent,
            session_id=session_id,
        )
        run.span.set_attributes(
            {n.GEN_AI_HANDOFF_FROM_AGENT: from_agent, n.GEN_AI_HANDOFF_TO_AGENT: to_agent}
        )
        return run

    @contextmanager
    def decision(self, call_id: str, tool: str, *, waiting: SpanContext) -> Iterator[Span]:
        """``hitl.decision`` in the deciding request, linked to the span that waited."""
        links = [Link(waiting)] if waiting.is_valid else []
        with self._tracer.start_as_current_span(
            n.SPAN_HITL_DECISION,
            links=links,
            attributes={n.GEN_AI_TOOL_NAME: tool, n.GEN_AI_TOOL_CALL_ID: call_id},
        ) as span:
            yield span
