"""One named factory per operation: the request, an agent run, a model call, a tool call, a
handoff, a human decision.

Each returns an object with ``stop()`` and ``fail()`` (:mod:`telemetry._runs`, re-exported
here) because these spans outlive any ``with`` block (an SSE stream, a HITL wait across
requests); both are idempotent, so the request's finaliser can end whatever is still open,
exactly once, on any path. None of them attaches itself to the context: a stream resumes in
other tasks, so callers pass ``context`` explicitly or wrap a step in ``activate()``.

Every span is started by the SDK's tracer (``Tracer.start_span``): the sampler, ids, span
limits, every processor hook and the SDK's own metrics apply as to any other span. The
GenAI attributes of the semantic conventions are set at start (what sampling needs) and at
end (outcome, usage), and each finished operation records one histogram point
(:mod:`telemetry.operation_metrics`), never one per streamed chunk. Inside a request, open
spans through :class:`telemetry.RequestTrace`, which owns their end.

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
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Tracer, use_span

from telemetry import names as n
from telemetry._runs import AgentRun, ChatCall, RequestSpan, ToolRun, error_type, start_chat
from telemetry.emit import EventEmitter
from telemetry.operation_metrics import OperationMetrics
from telemetry.span_ref import SpanRef, span_context_of

__all__ = ["AgentRun", "ChatCall", "RequestSpan", "SpanFactory", "ToolRun", "error_type"]


def _links(targets: Sequence[SpanRef | SpanContext]) -> list[Link]:
    """Links to the valid ones of ``targets`` (an all-zero reference links to nothing)."""
    contexts = (span_context_of(target) for target in targets)
    return [Link(context) for context in contexts if context.is_valid]


class SpanFactory:
    """Creates the service's spans; the only place that knows the tracer."""

    def __init__(self, emitter: EventEmitter, tracer: Tracer, metrics: OperationMetrics) -> None:
        self.emitter = emitter
        self.metrics = metrics
        self._tracer = tracer

    def request(
        self,
        session_id: str,
        *,
        context: Context | None = None,
        links: Sequence[SpanRef | SpanContext] = (),
    ) -> RequestSpan:
        """``agent.request`` under the current (server) span; ids for sampling at start.
        ``links``: spans this request continues (a resumed run links to the span that
        waited for the human)."""
        span = self._tracer.start_span(
            n.SPAN_AGENT_REQUEST,
            context=context,
            kind=SpanKind.INTERNAL,
            attributes={n.GEN_AI_CONVERSATION_ID: session_id, n.SESSION_ID: session_id},
            links=_links(links),
        )
        return RequestSpan(span)

    def agent(self, agent: str, *, conversation_id: str, parent: Context) -> AgentRun:
        """``invoke_agent {agent}`` as a child of ``parent``."""
        span = self._tracer.start_span(
            f"{n.OPERATION_INVOKE_AGENT} {agent}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={
                n.GEN_AI_OPERATION_NAME: n.OPERATION_INVOKE_AGENT,
                n.GEN_AI_AGENT_NAME: agent,
                n.GEN_AI_CONVERSATION_ID: conversation_id,
            },
        )
        return AgentRun(
            span,
            agent,
            conversation_id,
            emitter=self.emitter,
            metrics=self.metrics,
            tracer=self._tracer,
        )

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
        return start_chat(
            self._tracer,
            self.metrics,
            model,
            provider=provider,
            server_address=server_address,
            conversation_id=conversation_id,
            parent=parent,
        )

    def tool(
        self, tool: str, call_id: str, *, agent: str, parent: Context, session_id: str | None
    ) -> ToolRun:
        """``execute_tool {tool}`` as a child of the agent's span."""
        span = self._tracer.start_span(
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
        return ToolRun(
            span, tool, call_id, agent, session_id, emitter=self.emitter, metrics=self.metrics
        )

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
        tool = f"{n.HANDOFF_TOOL_PREFIX}{to_agent}"
        span = self._tracer.start_span(
            f"{n.OPERATION_EXECUTE_TOOL} {tool}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={
                n.GEN_AI_OPERATION_NAME: n.OPERATION_EXECUTE_TOOL,
                n.GEN_AI_TOOL_NAME: tool,
                n.GEN_AI_TOOL_CALL_ID: call_id,
                n.GEN_AI_TOOL_TYPE: n.TOOL_TYPE_FUNCTION,
                n.GEN_AI_AGENT_NAME: from_agent,
                n.GEN_AI_HANDOFF_FROM_AGENT: from_agent,
                n.GEN_AI_HANDOFF_TO_AGENT: to_agent,
            },
        )
        return ToolRun(
            span,
            tool,
            call_id,
            from_agent,
            session_id,
            emitter=self.emitter,
            metrics=self.metrics,
        )

    @contextmanager
    def decision(
        self, call_id: str, tool: str, *, waiting: SpanRef | SpanContext
    ) -> Iterator[Span]:
        """``hitl.decision`` in the deciding request, linked to the span that waited
        (``waiting``: as stored with the approval, :meth:`SpanRef.of` the waiting tool run)."""
        span = self._tracer.start_span(
            n.SPAN_HITL_DECISION,
            context=None,
            kind=SpanKind.INTERNAL,
            attributes={n.GEN_AI_TOOL_NAME: tool, n.GEN_AI_TOOL_CALL_ID: call_id},
            links=_links([waiting]),
        )
        with use_span(span, end_on_exit=True):
            yield span
