"""LLMStreamService: one model call of one agent, streamed under the agent's span.

The model is called with the agent's span active around each step of the stream, so the
OpenAI instrumentation's ``chat <model>`` span nests under ``invoke_agent``; the stream is
always closed, so that span ends even when the client goes away mid-answer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

from agent_runtime.agents import AgentSpec
from agent_runtime.llm.base import (
    ChatMessage,
    ChatModel,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from telemetry import AgentRun


@dataclass(slots=True)
class ModelTurn:
    """What one model call produced: its text, its tool calls, its usage."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None


class LLMStreamService:
    """Streams one agent's model calls with the agent's system prompt and tools."""

    def __init__(self, model: ChatModel) -> None:
        self._model = model

    async def stream(
        self,
        run: AgentRun,
        spec: AgentSpec,
        history: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        turn: ModelTurn,
    ) -> AsyncIterator[str]:
        """Yield text deltas as they arrive; tool calls and usage are collected in ``turn``."""
        messages = [ChatMessage("system", spec.system_prompt), *history]
        events = self._model.stream(messages, tools)
        try:
            while True:
                with run.activate():
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        return
                if isinstance(event, TextDelta):
                    turn.text += event.text
                    yield event.text
                elif isinstance(event, ToolCallRequest):
                    # Providers' ids are only unique within one response (some servers
                    # send "call_0" every time); approvals are addressed by id across
                    # sessions and restarts, so every call gets a service-wide id.
                    turn.tool_calls.append(replace(event.call, id=f"call_{uuid.uuid4().hex}"))
                elif isinstance(event, Usage):
                    turn.usage = event
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                with run.activate():
                    await close()

    async def complete(
        self,
        run: AgentRun,
        spec: AgentSpec,
        history: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
    ) -> ModelTurn:
        """The whole answer of one model call (the orchestrator's routing needs no stream)."""
        turn = ModelTurn()
        async for _ in self.stream(run, spec, history, tools, turn):
            pass
        return turn
