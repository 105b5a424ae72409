"""The objects the span factories return: a request, an agent run, a model call, a tool call.

Each has ``stop()`` and ``fail()``, both idempotent, because these spans outlive any
``with`` block (an SSE stream, a HITL wait across requests): the request's finaliser can
end whatever is still open, exactly once, on any path. None attaches itself to the
context; ``activate()`` makes one current for a step. Created by
:class:`telemetry.spans.SpanFactory`, which re-exports them.

Every span is the SDK's, started by ``Tracer.start_span``, so every span processor hook,
the span limits and the SDK's own metrics apply. A run object depends only on what it
uses: its span, the emit call (:class:`~telemetry.emit.EventEmitter`), the operation
histograms (:class:`~telemetry.operation_metrics.OperationMetrics`) and, for an agent run
that calls a model, the tracer that starts its ``chat`` spans. A real failure is written the
same way on each (:mod:`telemetry._failure`).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from telemetry import names as n
from telemetry._failure import error_type, fail_span
from telemetry.emit import EventEmitter
from telemetry.events import (
    AgentErrorOccurred,
    AgentProcessingCompleted,
    AgentProcessingStarted,
    ToolExecutionCompleted,
)
from telemetry.operation_metrics import OperationMetrics
from telemetry.span_ref import SpanRef

__all__ = ["AgentRun", "ChatCall", "RequestSpan", "ToolRun", "error_type", "start_chat"]


class _Activated(AbstractContextManager[None]):
    """``ctx`` attached for one ``with`` block. A class, not a ``@contextmanager``
    generator: it does less per block, and a run enters a block for every step it takes."""

    __slots__ = ("_ctx", "_token")

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def __enter__(self) -> None:
        self._token = otel_context.attach(self._ctx)

    def __exit__(self, *exc_info: object) -> None:
        otel_context.detach(self._token)


class RequestSpan:
    """``agent.request``: one user message, from arrival to the last SSE event."""

    span: Span

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

    @property
    def span_ref(self) -> SpanRef:
        return SpanRef.of(self.span)

    def activate(self) -> AbstractContextManager[None]:
        return _Activated(self.context)

    def stop(self, outcome: str) -> None:
        if self._ended:
            return
        self._ended = True
        self.span.set_attribute(n.REQUEST_OUTCOME, outcome)
        self.span.end()

    def fail(self, exc: BaseException) -> None:
        if self._ended:
            return
        fail_span(self.span, exc)
        self.stop(n.OUTCOME_ERROR)


class _Operation:
    """A span that outlives a ``with`` block, its start time, and whether it ended."""

    span: Span

    def __init__(self, span: Span) -> None:
        self.span = span
        self.context: Context = trace.set_span_in_context(span)
        self._valid = span.get_span_context().is_valid
        self._started = time.monotonic()
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def span_context(self) -> SpanContext:
        return self.span.get_span_context()

    @property
    def span_ref(self) -> SpanRef:
        """This span's identity as plain values (what a paused run stores)."""
        return SpanRef.of(self.span)

    def link(self, target: SpanRef) -> None:
        """Link this (still open) span to ``target``: a decision recorded in another
        process's span, which this span waited for."""
        context = target.context
        if context.is_valid and not self._ended:
            self.span.add_link(context)

    def activate(self) -> AbstractContextManager[None]:
        """Make this span current for one step (a model call, a tool's work); a no-op when
        there is no span (telemetry off: the API's no-op tracer), as nothing could read it."""
        if not self._valid:
            return nullcontext()
        return _Activated(self.context)

    def _finish(self) -> float | None:
        """Mark ended; the duration so far, or None when it had already ended."""
        if self._ended:
            return None
        self._ended = True
        return time.monotonic() - self._started


class AgentRun(_Operation):
    """``invoke_agent {agent}``: its start and end are AgentProcessingStarted/Completed."""

    def __init__(
        self,
        span: Span,
        agent: str,
        session_id: str | None,
        *,
        emitter: EventEmitter,
        metrics: OperationMetrics,
        tracer: Tracer,
    ) -> None:
        """``tracer`` starts this agent's ``chat`` spans (:meth:`chat`)."""
        super().__init__(span)
        self.agent = agent
        self.session_id = session_id
        self._emitter = emitter
        self._metrics = metrics
        self._tracer = tracer
        emitter.emit(AgentProcessingStarted(agent=agent, session_id=session_id), span=span)

    def chat(self, model: str, *, provider: str, server_address: str | None = None) -> ChatCall:
        """``chat {model}``: one model call of this agent, a child of its span.

        Nothing ends it but its own ``stop``/``fail``; inside a request, open it through
        :meth:`telemetry.RequestTrace.chat`, whose finaliser ends it on every path."""
        return start_chat(
            self._tracer,
            self._metrics,
            model,
            provider=provider,
            server_address=server_address,
            conversation_id=self.session_id,
            parent=self.context,
        )

    def stop(self, outcome: str = n.OUTCOME_COMPLETED) -> None:
        """End normally; ``outcome`` (completed, handed_off, rejected, disconnected…) is not
        an error whatever its value."""
        duration = self._finish()
        if duration is None:
            return
        self.span.set_attribute(n.AGENT_OUTCOME, outcome)
        self.span.end()
        self._completed(outcome, duration, None)

    def fail(self, exc: BaseException) -> None:
        """End with status ERROR, the exception recorded and AgentErrorOccurred emitted."""
        duration = self._finish()
        if duration is None:
            return
        fail_span(self.span, exc)
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
        self.span.end()
        self._completed(n.OUTCOME_ERROR, duration, error_type(exc))

    def _completed(self, outcome: str, duration: float, error: str | None) -> None:
        self._metrics.agent_finished(self.agent, duration, error, context=self.context)
        self._emitter.emit(
            AgentProcessingCompleted(
                agent=self.agent, duration_s=duration, outcome=outcome, session_id=self.session_id
            ),
            span=self.span,
        )


class ChatCall(_Operation):
    """``chat {model}``: one streamed model call, ended when its stream is closed.

    The response's details arrive as the stream goes (:meth:`first_chunk`,
    :meth:`response`, :meth:`usage`) and are set on the span once; the duration and token
    histograms get one point each when the call ends, never one per chunk.
    """

    def __init__(
        self, span: Span, metric_attributes: dict[str, AttributeValue], metrics: OperationMetrics
    ) -> None:
        super().__init__(span)
        self._metric_attributes = metric_attributes
        self._metrics = metrics
        self._first_chunk_s: float | None = None
        self._input_tokens: int | None = None
        self._output_tokens: int | None = None
        self._response: dict[str, AttributeValue] = {}  # set on the span when it ends

    def first_chunk(self) -> None:
        """The first piece of the answer arrived (time to first chunk), once."""
        if self._first_chunk_s is None:
            self._first_chunk_s = time.monotonic() - self._started

    def response(
        self, response_id: str | None, model: str | None, finish_reasons: tuple[str, ...]
    ) -> None:
        """What the provider said about its answer: its id, the model that answered, and
        why it stopped."""
        if self._ended:
            return
        self._response[n.GEN_AI_RESPONSE_FINISH_REASONS] = finish_reasons
        if response_id:
            self._response[n.GEN_AI_RESPONSE_ID] = response_id
        if model:
            self._response[n.GEN_AI_RESPONSE_MODEL] = model
            self._metric_attributes[n.GEN_AI_RESPONSE_MODEL] = model

    def usage(self, input_tokens: int, output_tokens: int) -> None:
        """The call's token usage, as the provider reported it."""
        self._input_tokens, self._output_tokens = input_tokens, output_tokens

    def stop(self) -> None:
        """End normally; a stream closed early by its consumer ends here too (not an error)."""
        duration = self._finish()
        if duration is not None:
            self._end(duration)

    def fail(self, exc: BaseException) -> None:
        """The provider failed: status ERROR, ``error.type`` on the span and the metrics."""
        duration = self._finish()
        if duration is None:
            return
        fail_span(self.span, exc)
        self._metric_attributes[n.ERROR_TYPE] = error_type(exc)
        self._end(duration)

    def _end(self, duration: float) -> None:
        # One set_attributes call for everything learnt on the way: the SDK span takes its
        # lock and cleans the values once per call, not once per attribute.
        attributes = self._response
        if self._first_chunk_s is not None:
            attributes[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self._first_chunk_s
        if self._input_tokens is not None and self._output_tokens is not None:
            attributes[n.GEN_AI_USAGE_INPUT_TOKENS] = self._input_tokens
            attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] = self._output_tokens
        if attributes:
            self.span.set_attributes(attributes)
        self.span.end()
        self._metrics.chat_finished(
            self._metric_attributes,
            duration,
            input_tokens=self._input_tokens,
            output_tokens=self._output_tokens,
            context=self.context,
        )


class ToolRun(_Operation):
    """``execute_tool {tool}``: stays open while the call waits for a human."""

    def __init__(
        self,
        span: Span,
        tool: str,
        call_id: str,
        agent: str,
        session_id: str | None,
        *,
        emitter: EventEmitter,
        metrics: OperationMetrics,
    ) -> None:
        super().__init__(span)
        self.tool = tool
        self.call_id = call_id
        self.agent = agent
        self.session_id = session_id
        self._emitter = emitter
        self._metrics = metrics

    def stop(self, outcome: str = n.OUTCOME_COMPLETED) -> None:
        """End normally: ``completed``, ``rejected`` (a human said no), or the request's
        outcome when it ended first (``disconnected``, ``shutdown``…); see
        :data:`telemetry.names.ToolSpanOutcome`."""
        duration = self._finish()
        if duration is None:
            return
        self.span.set_attribute(n.TOOL_OUTCOME, outcome)
        self.span.end()
        self._metrics.tool_finished(self.tool, self.agent, duration, None, context=self.context)
        # The seed's tool counts know completed and rejected calls; a call the request's end
        # cut short (disconnected, shutdown) is neither, and stays only "requested".
        if outcome == n.OUTCOME_COMPLETED:
            self._completed(n.OUTCOME_COMPLETED, duration)
        elif outcome == n.OUTCOME_REJECTED:
            self._completed(n.OUTCOME_REJECTED, duration)

    def fail(self, exc: BaseException) -> None:
        """The tool itself failed (refused path, command error): status ERROR."""
        duration = self._finish()
        if duration is None:
            return
        fail_span(self.span, exc)
        self.span.set_attribute(n.TOOL_OUTCOME, n.OUTCOME_FAILED)
        self.span.end()
        self._metrics.tool_finished(
            self.tool, self.agent, duration, error_type(exc), context=self.context
        )
        self._completed(n.OUTCOME_FAILED, duration)

    def _completed(self, outcome: n.ToolOutcome, duration: float) -> None:
        self._emitter.emit(
            ToolExecutionCompleted(
                tool=self.tool,
                call_id=self.call_id,
                outcome=outcome,
                duration_s=duration,
                session_id=self.session_id,
            ),
            span=self.span,
        )


def start_chat(
    tracer: Tracer,
    metrics: OperationMetrics,
    model: str,
    *,
    provider: str,
    server_address: str | None,
    conversation_id: str | None,
    parent: Context,
) -> ChatCall:
    """``chat {model}`` (kind CLIENT) as a child of ``parent`` (the agent that calls the model);
    the attributes sampling needs are set at start, the response's when it ends."""
    metric_attributes: dict[str, AttributeValue] = {
        n.GEN_AI_OPERATION_NAME: n.OPERATION_CHAT,
        n.GEN_AI_PROVIDER_NAME: provider,
        n.GEN_AI_REQUEST_MODEL: model,
    }
    if server_address:
        metric_attributes[n.SERVER_ADDRESS] = server_address
    attributes: dict[str, AttributeValue] = {**metric_attributes, n.GEN_AI_REQUEST_STREAM: True}
    if conversation_id:
        attributes[n.GEN_AI_CONVERSATION_ID] = conversation_id
    span = tracer.start_span(
        f"{n.OPERATION_CHAT} {model}",
        context=parent,
        kind=SpanKind.CLIENT,
        attributes=attributes,
    )
    return ChatCall(span, metric_attributes, metrics)
