"""One named factory per operation: the request, an agent run, a model call, a tool call, a
handoff, a human decision.

Each returns an object with ``stop()`` and ``fail()`` (:mod:`telemetry._runs`, re-exported
here) because these spans outlive any ``with`` block (an SSE stream, a HITL wait across
requests); both are idempotent, so the request's finaliser can end whatever is still open,
exactly once, on any path. None of them attaches itself to the context: a stream resumes in
other tasks, so callers pass ``context`` explicitly or wrap a step in ``activate()``.

The spans are started by :mod:`telemetry._recording_span` (the SDK's sampler, ids and
processors, without its per-call attribute validation), with the GenAI attributes of the
semantic conventions set at start (what sampling needs) and at end (outcome, usage), and one
histogram point per finished operation (:mod:`telemetry.operation_metrics`). An earlier
version went through opentelemetry-util-genai's invocations and the OpenAI
instrumentation: the same spans, but ~2 ms more CPU per agent run, most of it per-chunk
histogram points and per-invocation bookkeeping (see the README's benchmarks).

    run = spans.agent("coder", conversation_id=session_id, parent=request.context)
    try:
        call = run.chat("gpt-4o-mini", provider="openai")  # chat <model> under the agent
        ...  # stream the answer with call.activate(); then call.usage(...), call.stop()
        run.stop(outcome="completed")
    except Exception as exc:
        run.fail(exc)
        raise
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Tracer, use_span
from opentelemetry.util.types import AttributeValue

from telemetry import names as n
from telemetry._recording_span import span_starter
from telemetry._runs import AgentRun, ChatCall, RequestSpan, ToolRun, error_type
from telemetry.emit import EventEmitter
from telemetry.operation_metrics import OperationMetrics
from telemetry.span_ref import SpanRef

__all__ = ["AgentRun", "ChatCall", "RequestSpan", "SpanFactory", "ToolRun", "error_type"]


class SpanFactory:
    """Creates the service's spans; the only place that knows the tracer."""

    def __init__(self, emitter: EventEmitter, tracer: Tracer, metrics: OperationMetrics) -> None:
        self.emitter = emitter
        self.metrics = metrics
        self._start = span_starter(tracer)

    def request(
        self,
        session_id: str,
        *,
        context: Context | None = None,
        links: Sequence[SpanRef] = (),
    ) -> RequestSpan:
        """``agent.request`` under the current (server) span; ids for sampling at start.
        ``links``: spans this request continues the story of (a run resumed after a human
        decision links to the span that waited for it)."""
        span = self._start(
            n.SPAN_AGENT_REQUEST,
            context=context,
            kind=SpanKind.INTERNAL,
            attributes={n.GEN_AI_CONVERSATION_ID: session_id, n.SESSION_ID: session_id},
            links=[Link(ref.span_context()) for ref in links if ref.is_valid],
        )
        return RequestSpan(span)

    def agent(self, agent: str, *, conversation_id: str, parent: Context) -> AgentRun:
        """``invoke_agent {agent}`` as a child of ``parent``."""
        span = self._start(
            f"{n.OPERATION_INVOKE_AGENT} {agent}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={
                n.GEN_AI_OPERATION_NAME: n.OPERATION_INVOKE_AGENT,
                n.GEN_AI_AGENT_NAME: agent,
                n.GEN_AI_CONVERSATION_ID: conversation_id,
            },
        )
        return AgentRun(span, agent, conversation_id, self)

    def chat(
        self,
        model: str,
        *,
        provider: str,
        server_address: str | None,
        conversation_id: str | None,
        parent: Context,
    ) -> ChatCall:
        """``chat {model}`` (kind CLIENT) as a child of the agent that calls the model."""
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
        span = self._start(
            f"{n.OPERATION_CHAT} {model}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        return ChatCall(span, metric_attributes, self.metrics)

    def tool(
        self, tool: str, call_id: str, *, agent: str, parent: Context, session_id: str | None
    ) -> ToolRun:
        """``execute_tool {tool}`` as a child of the agent's span."""
        span = self._start(
            f"{n.OPERATION_EXECUTE_TOOL} {tool}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={
                n.GEN_AI_OPERATION_NAME: n.OPERATION_EXECUTE_TOOL,
                n.GEN_AI_TOOL_NAME: tool,
                n.GEN_AI_TOOL_CALL_ID: call_id,
                n.GEN_AI_TOOL_TYPE: n.TOOL_TYPE_FUNCTION,
                n.GEN_AI_AGENT_NAME: agent,
            },
        )
        return ToolRun(span, tool, call_id, agent, session_id, self)

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
    def decision(self, call_id: str, tool: str, *, waiting: SpanRef) -> Iterator[Span]:
        """``hitl.decision`` in the deciding request, linked to the span that waited."""
        span = self._start(
            n.SPAN_HITL_DECISION,
            context=None,
            kind=SpanKind.INTERNAL,
            attributes={n.GEN_AI_TOOL_NAME: tool, n.GEN_AI_TOOL_CALL_ID: call_id},
            links=[Link(waiting.span_context())] if waiting.is_valid else [],
        )
        with use_span(span, end_on_exit=True):
            yield span
