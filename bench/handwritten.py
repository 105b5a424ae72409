"""The SDK's floor for one agent run: the same signals the layer records, written by hand on
the raw OpenTelemetry SDK with no layer at all: 8 spans (request, 2 invoke_agent, 3 chat,
execute_tool, hitl.decision with its link), 9 span events, 13 histogram points (3 model-call
durations, 6 token counts, 2 agent and 1 tool durations, 1 human wait; the operations'
points recorded in their span's context, so they carry exemplars as the layer's do), 6
counter increments (the session, the switch, the tool call requested, needing approval and
completed, the decision) and 4 log records (the audited events). The worker's ``sdk``
variant adds this to a stubbed-out run, so ``sdk - bare`` is what recording this trace costs
at the least, and ``on - off`` can be read against it. (Until the layer recorded its counts
through synchronous counters and its points with exemplars, this trace had neither.)"""

from __future__ import annotations

import time

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import AttributeValue

Attrs = dict[str, AttributeValue]


class HandwrittenTrace:
    """Instruments created once, like any instrumented library would."""

    def __init__(
        self, tracer: TracerProvider, meter: MeterProvider, logger: LoggerProvider
    ) -> None:
        self.tracer = tracer.get_tracer("handwritten")
        m = meter.get_meter("handwritten")
        self.agent_duration = m.create_histogram("gen_ai.invoke_agent.duration", unit="s")
        self.tool_duration = m.create_histogram("gen_ai.execute_tool.duration", unit="s")
        self.chat_duration = m.create_histogram("gen_ai.client.operation.duration", unit="s")
        self.tokens = m.create_histogram("gen_ai.client.token.usage", unit="{token}")
        self.wait = m.create_histogram("agent_runtime.hitl.wait.duration", unit="s")
        self.switches = m.create_counter("agent_runtime.agent.switches", unit="{switch}")
        self.tool_calls = m.create_counter("agent_runtime.tool.calls", unit="{call}")
        self.decisions = m.create_counter("agent_runtime.hitl.decisions", unit="{decision}")
        self.sessions = m.create_up_down_counter("agent_runtime.sessions.active", unit="{session}")
        self.logger = logger.get_logger("handwritten")

    def _chat(self, parent: trace.Span, session: str) -> None:
        metric: Attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "scripted",
            "server.address": "scripted.invalid",
        }
        span = self.tracer.start_span(
            "chat scripted",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes={**metric, "gen_ai.request.stream": True, "gen_ai.conversation.id": session},
        )
        span.set_attributes(
            {
                "gen_ai.response.finish_reasons": ("stop",),
                "gen_ai.response.id": "chatcmpl-0123456789abcdef",
                "gen_ai.response.model": "scripted",
                "gen_ai.response.time_to_first_chunk": 0.002,
                "gen_ai.usage.input_tokens": 400,
                "gen_ai.usage.output_tokens": 40,
            }
        )
        span.end()
        metric["gen_ai.response.model"] = "scripted"
        context = trace.set_span_in_context(span)
        self.chat_duration.record(0.01, metric, context)
        self.tokens.record(400, {**metric, "gen_ai.token.type": "input"}, context)
        self.tokens.record(40, {**metric, "gen_ai.token.type": "output"}, context)

    def _audit(self, span: trace.Span, name: str, attributes: Attrs) -> None:
        span.add_event(name, attributes)
        self.logger.emit(
            timestamp=time.time_ns(),
            context=trace.set_span_in_context(span),
            event_name=name,
            body=name,
            attributes=attributes,
        )

    def _agent(self, parent: trace.Span, agent: str, session: str) -> trace.Span:
        return self.tracer.start_span(
            f"invoke_agent {agent}",
            context=trace.set_span_in_context(parent),
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": agent,
                "gen_ai.conversation.id": session,
            },
        )

    def record_run(self, session: str) -> None:
        request = self.tracer.start_span(
            "agent.request", attributes={"gen_ai.conversation.id": session, "session.id": session}
        )
        request.add_event("session.created", {"session.id": session})
        self.sessions.add(1)
        request.add_event(
            "session.message_added",
            {"agent_runtime.message.role": "user", "agent_runtime.message.content_length": 25},
        )
        orchestrator = self._agent(request, "orchestrator", session)
        self._chat(orchestrator, session)
        self._audit(
            orchestrator,
            "agent.switched",
            {
                "agent_runtime.switch.from": "orchestrator",
                "agent_runtime.switch.to": "coder",
                "agent_runtime.switch.trigger": "orchestrator",
                "agent_runtime.switch.reason": "the message mentions 'create'",
                "agent_runtime.switch.confidence": 0.9,
            },
        )
        self.switches.add(
            1,
            {
                "agent_runtime.switch.from": "orchestrator",
                "agent_runtime.switch.to": "coder",
                "agent_runtime.switch.trigger": "orchestrator",
            },
        )
        orchestrator.set_attribute("agent_runtime.agent.outcome", "handed_off")
        orchestrator.end()
        self.agent_duration.record(
            0.05, {"gen_ai.agent.name": "orchestrator"}, trace.set_span_in_context(orchestrator)
        )

        coder = self._agent(request, "coder", session)
        self._chat(coder, session)
        call: Attrs = {"gen_ai.tool.name": "write_file", "gen_ai.tool.call.id": "call_0123"}
        coder.add_event("tool.execution_requested", call)
        tool_calls: Attrs = {"gen_ai.tool.name": "write_file"}
        self.tool_calls.add(1, {**tool_calls, "agent_runtime.tool.outcome": "requested"})
        tool = self.tracer.start_span(
            "execute_tool write_file",
            context=trace.set_span_in_context(coder),
            attributes={
                **call,
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.type": "function",
                "gen_ai.agent.name": "coder",
            },
        )
        self._audit(
            tool, "tool.approval_required", {**call, "agent_runtime.approval.reason": "writes"}
        )
        self.tool_calls.add(1, {**tool_calls, "agent_runtime.tool.outcome": "requires_approval"})
        self._audit(
            tool, "hitl.approval_requested", {**call, "agent_runtime.approval.timeout_s": 300}
        )
        decision = self.tracer.start_span(
            "hitl.decision", links=[Link(tool.get_span_context())], attributes=call
        )
        self._audit(
            tool,
            "hitl.decision_made",
            {
                **call,
                "agent_runtime.hitl.decision": "APPROVE",
                "agent_runtime.hitl.modified": False,
                "agent_runtime.hitl.wait_ms": 2.0,
            },
        )
        decided: Attrs = {
            "gen_ai.tool.name": "write_file",
            "agent_runtime.hitl.decision": "APPROVE",
        }
        self.decisions.add(1, decided)
        self.wait.record(0.002, decided)
        decision.end()
        tool.set_attribute("agent_runtime.tool.outcome", "completed")
        tool.end()
        self.tool_calls.add(1, {**tool_calls, "agent_runtime.tool.outcome": "completed"})
        self.tool_duration.record(
            0.001, {"gen_ai.tool.name": "write_file"}, trace.set_span_in_context(tool)
        )
        self._chat(coder, session)
        coder.set_attribute("agent_runtime.agent.outcome", "completed")
        coder.end()
        self.agent_duration.record(
            0.02, {"gen_ai.agent.name": "coder"}, trace.set_span_in_context(coder)
        )
        request.add_event("session.updated", {"gen_ai.agent.name": "coder"})
        request.set_attribute("agent_runtime.request.outcome", "completed")
        request.end()
