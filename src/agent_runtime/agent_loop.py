"""The agent loop: model calls, tool calls and handoffs over a session's transcript.

One loop drives every run, whether it starts from a user message or resumes after a human
decision: the agent's model call receives the transcript; its answer is appended to the
transcript (with its tool calls) *before* the calls run, so a run that pauses for a human is
fully described by the transcript plus the pending approval; each tool result is appended
as it arrives; a ``transfer_to_<agent>`` call hands over to that agent, whose model call
sees the same transcript. The outcome travels as a value: a run whose last tool call a
human rejected ends ``rejected``, any other normal end ``completed``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.agents import AgentSpec
from agent_runtime.hitl import Resolution
from agent_runtime.llm import ToolCall
from agent_runtime.llm.stream import ContextWindow, LLMStreamService, ModelTurn
from agent_runtime.sessions import SessionManager
from agent_runtime.store import MessageRecord
from agent_runtime.stream_events import StreamEvent
from agent_runtime.toolrunner import ToolCallResult, ToolRunner
from agent_runtime.transcript import to_chat_messages, tool_call_dicts
from telemetry import AgentRun, AgentSwitched, EventSink, RequestTrace, SwitchTrigger, ToolOutcome
from telemetry import names as n

MAX_HANDOFFS = 4
MAX_MODEL_CALLS_PER_AGENT = 6

PendingCall = tuple[ToolCall, Resolution | None]
"""A tool call still to run in this run, and the human's decision when it was already made
(a paused run resumed from the store)."""


@dataclass(slots=True)
class RunState:
    """One run's view of its session: the transcript as it grows, where it stands."""

    request: RequestTrace
    session_id: str
    agent: str
    window: ContextWindow
    transcript: list[MessageRecord] = field(default_factory=list)
    last_tool_outcome: ToolOutcome | None = None
    final_text: str = ""
    last_tool_result: dict[str, Any] | None = None

    @property
    def outcome(self) -> str:
        """``rejected`` when the run's last tool call was a human's no, else ``completed``."""
        rejected = self.last_tool_outcome == n.OUTCOME_REJECTED
        return n.OUTCOME_REJECTED if rejected else n.OUTCOME_COMPLETED


def switch_event(switch: AgentSwitched) -> StreamEvent:
    """The ``agent_switched`` SSE event for a switch."""
    return StreamEvent(
        "agent_switched",
        {
            "from": switch.from_agent,
            "to": switch.to_agent,
            "trigger": switch.trigger,
            "reason": switch.reason,
            "confidence": switch.confidence,
        },
    )


class AgentLoop:
    """Runs agents over a session's transcript until one answers in text."""

    def __init__(
        self,
        *,
        agents: Mapping[str, AgentSpec],
        sessions: SessionManager,
        tools: ToolRunner,
        llm: LLMStreamService,
        events: EventSink,
    ) -> None:
        self._agents = agents
        self._sessions = sessions
        self._tools = tools
        self._llm = llm
        self._events = events

    async def append(
        self, state: RunState, role: str, content: str | None, **fields: Any
    ) -> MessageRecord:
        """Append a transcript entry, durably, and keep the run's copy in step."""
        with state.request.request.activate():
            entry = await self._sessions.add_message(state.session_id, role, content, **fields)
        state.transcript.append(entry)
        return entry

    async def switch(
        self,
        state: RunState,
        *,
        from_agent: str,
        to_agent: str,
        trigger: SwitchTrigger,
        reason: str,
        confidence: float,
        run: AgentRun | None = None,
    ) -> StreamEvent:
        """Record an agent switch: the ``agent.switched`` event on the handing-over span (the
        request's when no agent hands over), a ``handoff`` transcript entry, the SSE event."""
        switch = AgentSwitched(
            from_agent=from_agent,
            to_agent=to_agent,
            trigger=trigger,
            reason=reason,
            confidence=confidence,
            session_id=state.session_id,
        )
        self._events.emit(switch, span=(run or state.request.request).span)
        await self.append(
            state,
            "handoff",
            reason,
            agent=to_agent,
            meta={
                "from": from_agent,
                "to": to_agent,
                "trigger": trigger,
                "confidence": confidence,
            },
        )
        state.agent = to_agent
        return switch_event(switch)

    async def run(
        self, state: RunState, pending: Sequence[PendingCall] = ()
    ) -> AsyncIterator[StreamEvent]:
        """Drive ``state.agent`` (and whoever it hands over to) to a text answer.

        ``pending``: calls of the transcript's last assistant entry still to run, before the
        first model call (a resumed run).
        """
        calls = list(pending)
        for _ in range(MAX_HANDOFFS):
            spec = self._agents[state.agent]
            run = state.request.agent(spec.name)
            next_agent: str | None = None
            model_calls = 0
            while True:
                for index, (call, resolution) in enumerate(calls):
                    target = self._tools.handoff_target(spec, call.name)
                    if target is not None:
                        yield await self._handoff(state, run, call, target)
                        await self._skip(state, calls[index + 1 :], target)
                        next_agent = target
                        break
                    async for event in self._tool(state, run, call, resolution):
                        yield event
                calls = []
                if next_agent is not None or model_calls == MAX_MODEL_CALLS_PER_AGENT:
                    break
                turn = ModelTurn()
                model_calls += 1
                async for delta in self._llm.stream(
                    run,
                    spec,
                    to_chat_messages(state.transcript),
                    self._tools.specs_for(spec),
                    turn,
                    state.window,
                ):
                    yield StreamEvent("text", {"agent": spec.name, "delta": delta})
                await self.append(
                    state,
                    "assistant",
                    turn.text or None,
                    agent=spec.name,
                    tool_calls=tool_call_dicts(turn.tool_calls),
                )
                if not turn.tool_calls:
                    state.final_text = turn.text
                    run.stop(state.outcome)
                    return
                calls = [(call, None) for call in turn.tool_calls]
            if next_agent is None:
                run.stop(state.outcome)
                return
            run.stop(n.OUTCOME_HANDED_OFF)
            state.agent = next_agent

    async def _tool(
        self, state: RunState, run: AgentRun, call: ToolCall, resolution: Resolution | None
    ) -> AsyncIterator[StreamEvent]:
        result = ToolCallResult()
        async for event in self._tools.execute(
            state.request, run, call, result, resolution=resolution
        ):
            if event.event == "tool_result":
                state.last_tool_result = event.data
            yield event
        state.last_tool_outcome = result.outcome
        meta: dict[str, Any] = {"outcome": result.outcome}
        if result.decision is not None:
            meta["decision"] = result.decision
        await self.append(
            state, "tool", result.output, agent=run.agent, tool_call_id=call.id, meta=meta
        )

    async def _handoff(
        self, state: RunState, run: AgentRun, call: ToolCall, target: str
    ) -> StreamEvent:
        """``execute_tool transfer_to_<target>``, the switch, and the call's result."""
        self._tools.announce(state.request, run, call)
        handoff = state.request.handoff(run, target, call.id)
        reason = str(call.arguments.get("reason", ""))[:256] or f"{run.agent} asked for {target}"
        await self.append(
            state,
            "tool",
            f"transferred to {target}",
            agent=run.agent,
            tool_call_id=call.id,
            meta={"outcome": n.OUTCOME_COMPLETED},
        )
        event = await self.switch(
            state,
            from_agent=run.agent,
            to_agent=target,
            trigger="agent",
            reason=reason,
            confidence=1.0,
            run=run,
        )
        handoff.stop(n.OUTCOME_COMPLETED)
        return event

    async def _skip(self, state: RunState, calls: Sequence[PendingCall], target: str) -> None:
        """Calls the model asked for after a handoff in the same answer are not run: each
        gets a result saying so, so the transcript keeps every call paired."""
        for call, _ in calls:
            await self.append(
                state,
                "tool",
                f"skipped: the conversation was handed over to {target}",
                agent=state.agent,
                tool_call_id=call.id,
                meta={"outcome": "skipped"},
            )
