"""The floor: the workload's two model calls and one tool call on the raw ``openai`` client,
its trace written by hand on the raw OpenTelemetry SDK; no framework.

Runs in the service's environment (the service's pinned SDK and client). Variants:

- ``on``: the GenAI trace of the run, 4 spans with the attributes agent-runtime gives
  them: ``invoke_agent`` (with the ``tool.execution_requested`` event), 2 ``chat``
  (CLIENT, request and response attributes, token usage), ``execute_tool``;
- ``signals``: everything agent-runtime records for this run, by hand: the same 4 spans
  under an ``agent.request`` span with its 4 events, the 8 histogram points (2 model-call
  durations, 4 token counts, the agent's and the tool's durations) and the audit log record
  of the agent choice;
- ``off``: the same calls and tool, no telemetry code at all.
"""

from __future__ import annotations

import json
import time
from typing import Any

import openai
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from bench.peers.driver import INSTRUCTIONS, MESSAGE, Workload, main, recording, versions

AGENT = "reader"
TOOLS: list[ChatCompletionFunctionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a text file of the workspace and return its content.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "The file's path."}},
                "required": ["path"],
            },
        },
    }
]
Attrs = dict[str, AttributeValue]


class Turn:
    """One streamed completion, assembled."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.response_id = ""
        self.model = ""
        self.finish_reasons: list[str] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self.first_chunk = 0.0


class FloorSubject:
    variants = ("on", "signals", "off")

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.client = openai.AsyncOpenAI(base_url=workload.base_url, api_key="x")
        self.recording = recording()
        self.tracer = self.recording.tracer_provider.get_tracer("floor")
        meter = self.recording.meter_provider.get_meter("floor")
        self.chat_duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
        self.tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
        self.agent_duration = meter.create_histogram("gen_ai.invoke_agent.duration", unit="s")
        self.tool_duration = meter.create_histogram("gen_ai.execute_tool.duration", unit="s")
        self.logger = self.recording.logger_provider.get_logger("floor")

    def prepare(self, variant: str, index: int) -> None:
        pass

    async def _chat(self, messages: list[ChatCompletionMessageParam]) -> Turn:
        turn = Turn()
        started = time.monotonic()
        stream = await self.client.chat.completions.create(
            model=self.workload.model,
            messages=messages,
            tools=TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if not turn.first_chunk:
                turn.first_chunk = time.monotonic() - started
                turn.response_id, turn.model = chunk.id, chunk.model
            if chunk.usage is not None:
                turn.input_tokens = chunk.usage.prompt_tokens
                turn.output_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.delta.content:
                    turn.text.append(choice.delta.content)
                for fragment in choice.delta.tool_calls or ():
                    call = turn.calls.setdefault(fragment.index, {"id": "", "name": "", "args": []})
                    call["id"] = call["id"] or fragment.id or ""
                    if fragment.function is not None:
                        call["name"] = call["name"] or fragment.function.name or ""
                        call["args"].append(fragment.function.arguments or "")
                if choice.finish_reason:
                    turn.finish_reasons.append(choice.finish_reason)
        return turn

    async def _traced_chat(
        self, messages: list[ChatCompletionMessageParam], session: str, signals: bool
    ) -> Turn:
        metric: Attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": self.workload.model,
            "server.address": "127.0.0.1",
        }
        started = time.monotonic()
        with self.tracer.start_as_current_span(
            f"chat {self.workload.model}",
            kind=SpanKind.CLIENT,
            attributes={**metric, "gen_ai.request.stream": True, "gen_ai.conversation.id": session},
        ) as span:
            turn = await self._chat(messages)
            span.set_attributes(
                {
                    "gen_ai.response.finish_reasons": tuple(turn.finish_reasons),
                    "gen_ai.response.id": turn.response_id,
                    "gen_ai.response.model": turn.model,
                    "gen_ai.response.time_to_first_chunk": turn.first_chunk,
                    "gen_ai.usage.input_tokens": turn.input_tokens,
                    "gen_ai.usage.output_tokens": turn.output_tokens,
                }
            )
        if signals:
            metric["gen_ai.response.model"] = turn.model
            self.chat_duration.record(time.monotonic() - started, metric)
            self.tokens.record(turn.input_tokens, {**metric, "gen_ai.token.type": "input"})
            self.tokens.record(turn.output_tokens, {**metric, "gen_ai.token.type": "output"})
        return turn

    async def run(self, variant: str, index: int) -> None:
        session = f"{variant}-{index}"
        if variant == "off":
            answer = await self._plain()
        elif variant == "on":
            answer = await self._traced(session, signals=False)
        else:
            with self.tracer.start_as_current_span(
                "agent.request",
                attributes={"gen_ai.conversation.id": session, "session.id": session},
            ) as request:
                request.add_event("session.created", {"session.id": session})
                request.add_event(
                    "session.message_added",
                    {
                        "agent_runtime.message.role": "user",
                        "agent_runtime.message.content_length": len(MESSAGE),
                    },
                )
                choice: Attrs = {
                    "agent_runtime.switch.from": "orchestrator",
                    "agent_runtime.switch.to": AGENT,
                    "agent_runtime.switch.trigger": "user",
                    "agent_runtime.switch.reason": "the user chose the agent",
                    "agent_runtime.switch.confidence": 1.0,
                }
                request.add_event("agent.switched", choice)
                self.logger.emit(
                    timestamp=time.time_ns(),
                    event_name="agent.switched",
                    body="agent.switched",
                    attributes=choice,
                )
                answer = await self._traced(session, signals=True)
                request.add_event("session.updated", {"gen_ai.agent.name": AGENT})
                request.set_attribute("agent_runtime.request.outcome", "completed")
        if "512" not in answer:
            raise RuntimeError(f"unexpected answer {answer!r}")

    def _messages(self) -> list[ChatCompletionMessageParam]:
        return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": MESSAGE}]

    def _tool_turn(self, messages: list[ChatCompletionMessageParam], turn: Turn) -> tuple[str, str]:
        """Append the assistant's tool call and the tool's result; the call's id and name."""
        call = turn.calls[0]
        arguments = "".join(call["args"])
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": arguments},
                    }
                ],
            }
        )
        return call["id"], json.loads(arguments)["path"]

    async def _plain(self) -> str:
        messages = self._messages()
        call_id, path = self._tool_turn(messages, await self._chat(messages))
        messages.append(
            {"role": "tool", "tool_call_id": call_id, "content": self.workload.read_file(path)}
        )
        return "".join((await self._chat(messages)).text)

    async def _traced(self, session: str, *, signals: bool) -> str:
        agent_started = time.monotonic()
        with self.tracer.start_as_current_span(
            f"invoke_agent {AGENT}",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": AGENT,
                "gen_ai.conversation.id": session,
            },
        ) as agent:
            messages = self._messages()
            call_id, path = self._tool_turn(
                messages, await self._traced_chat(messages, session, signals)
            )
            call: Attrs = {"gen_ai.tool.name": "read_file", "gen_ai.tool.call.id": call_id}
            agent.add_event("tool.execution_requested", call)
            tool_started = time.monotonic()
            tool: Attrs = {
                **call,
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.type": "function",
                "gen_ai.agent.name": AGENT,
            }
            with self.tracer.start_as_current_span(
                "execute_tool read_file", attributes=tool
            ) as span:
                content = self.workload.read_file(path)
                span.set_attribute("agent_runtime.tool.outcome", "completed")
            if signals:
                del tool["gen_ai.tool.call.id"]
                self.tool_duration.record(time.monotonic() - tool_started, tool)
            messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
            answer = "".join((await self._traced_chat(messages, session, signals)).text)
            agent.set_attribute("agent_runtime.agent.outcome", "completed")
        if signals:
            self.agent_duration.record(
                time.monotonic() - agent_started,
                {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": AGENT},
            )
        return answer

    async def counts(self) -> dict[str, Any]:
        return self.recording.counts()

    async def aclose(self) -> None:
        await self.client.close()
        self.recording.shutdown()


async def build(workload: Workload) -> FloorSubject:
    return FloorSubject(workload)


def ready() -> dict[str, Any]:
    return {"versions": versions()}


if __name__ == "__main__":
    main(build, ready)
