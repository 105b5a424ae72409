"""LLMStreamService: one model call of one agent, streamed under a ``chat <model>`` span.

The span is a child of the agent's ``invoke_agent`` span and is current around each step
of the stream (so anything the provider traces nests under it). It records the response's
id, model, finish reasons, time to first chunk and token usage once, when the call ends;
the stream is always closed, so the span ends even when the client goes away mid-answer,
and only a provider failure marks it as an error.

Before the call the messages are fitted to the context budget
(:func:`~agent_runtime.llm.budget.fit_context`): the oldest turns go first, and each cut is
a ``agent_runtime.context.trimmed`` event on the call's span and a counted metric. A
:class:`ContextWindow` carries one run's calibration from call to call: the provider's
reported prompt tokens of the previous call anchor the next call's estimate.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

from agent_runtime.agents import AgentSpec
from agent_runtime.llm.base import (
    ChatMessage,
    ChatModel,
    ModelEvent,
    ResponseInfo,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from agent_runtime.llm.budget import Anchor, fit_context
from telemetry import AgentRun, ContextTrimmed, EventSink


@dataclass(slots=True)
class ModelTurn:
    """What one model call produced: its text, its tool calls, its usage."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None


@dataclass(slots=True)
class ContextWindow:
    """One run's context budget: ``max_tokens`` per call, calibrated by the last call."""

    max_tokens: int
    anchor: Anchor | None = None


class LLMStreamService:
    """Streams one agent's model calls with the agent's system prompt and tools."""

    def __init__(self, model: ChatModel, events: EventSink | None = None) -> None:
        """``events``: where context trims are recorded (none: not recorded)."""
        self._model = model
        self._events = events

    async def stream(
        self,
        run: AgentRun,
        spec: AgentSpec,
        history: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        turn: ModelTurn,
        window: ContextWindow | None = None,
    ) -> AsyncIterator[str]:
        """Yield text deltas as they arrive; tool calls and usage are collected in ``turn``.

        The model receives the agent's system prompt, then ``history`` (the transcript, the
        session's own system prompt first when it has one), with the agent's model when it
        names one, fitted to ``window`` when one is given."""
        messages: Sequence[ChatMessage] = [ChatMessage("system", spec.system_prompt), *history]
        model = self._model
        call = run.chat(
            spec.model or model.model_name,
            provider=model.provider_name,
            server_address=model.server_address,
        )
        fit = None
        if window is not None:
            fit = fit_context(messages, window.max_tokens, tools=tools, anchor=window.anchor)
            messages = fit.messages
            if fit.trimmed and self._events is not None:
                self._events.emit(
                    ContextTrimmed(
                        agent=spec.name,
                        dropped_messages=fit.dropped_messages,
                        dropped_tokens=fit.dropped_tokens,
                        sent_tokens=fit.tokens,
                        budget_tokens=window.max_tokens,
                        over_budget=fit.over_budget,
                        session_id=run.session_id,
                    ),
                    span=call.span,
                )
        events = model.stream(messages, tools, model=spec.model)
        try:
            while True:
                with call.activate():
                    try:
                        event: ModelEvent = await anext(events)
                    except StopAsyncIteration:
                        return
                    except Exception as exc:
                        call.fail(exc)
                        raise
                if isinstance(event, TextDelta):
                    call.first_chunk()
                    turn.text += event.text
                    yield event.text
                elif isinstance(event, ToolCallRequest):
                    call.first_chunk()
                    # Providers' ids are only unique within one response (some servers
                    # send "call_0" every time); approvals are addressed by id across
                    # sessions and restarts, so every call gets a service-wide id.
                    turn.tool_calls.append(replace(event.call, id=f"call_{uuid.uuid4().hex}"))
                elif isinstance(event, ResponseInfo):
                    call.response(event.response_id, event.response_model, event.finish_reasons)
                elif isinstance(event, Usage):
                    call.usage(event.input_tokens, event.output_tokens)
                    turn.usage = event
                    if window is not None and fit is not None:
                        window.anchor = fit.anchor(event.input_tokens)
        finally:
            try:
                close = getattr(events, "aclose", None)
                if close is not None:
                    with call.activate():
                        await close()
            finally:
                call.stop()

    async def complete(
        self,
        run: AgentRun,
        spec: AgentSpec,
        history: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        window: ContextWindow | None = None,
    ) -> ModelTurn:
        """The whole answer of one model call (the orchestrator's routing needs no stream)."""
        turn = ModelTurn()
        async for _ in self.stream(run, spec, history, tools, turn, window):
            pass
        return turn
