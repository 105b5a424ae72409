"""MultiAgentOrchestrator: routes a user message to an agent and runs it to the end.

One call to :meth:`MultiAgentOrchestrator.handle` is one request and one trace. It yields
:class:`StreamEvent` values (the SSE events of DESIGN §5): ``meta`` first, ``done`` last.
Switches come in three kinds: the user's explicit choice, the orchestrator agent's routing,
and an agent's own handoff (``transfer_to_<agent>``). Tool calls that need a human wait in
the :class:`~agent_runtime.hitl.HITLManager`. Every span the request opens is ended exactly
once by its :class:`~telemetry.RequestTrace`, whatever way the stream ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agent_runtime.agents import AGENTS, ORCHESTRATOR, ROUTABLE_AGENTS
from agent_runtime.hitl import ApprovalsClosed, HITLManager
from agent_runtime.llm import ChatMessage, ChatModel, ModelError, ToolCall
from agent_runtime.llm.stream import LLMStreamService, ModelTurn
from agent_runtime.sessions import SessionManager
from agent_runtime.stream_events import StreamEvent
from agent_runtime.toolrunner import ToolRunner
from telemetry import (
    AgentRun,
    AgentSwitched,
    RequestTrace,
    Telemetry,
    names,
)

MAX_HANDOFFS = 4
MAX_MODEL_CALLS_PER_AGENT = 6


@dataclass(frozen=True, slots=True)
class Route:
    agent: str
    confidence: float
    reason: str


def parse_route(text: str) -> Route:
    """The orchestrator model's JSON answer; anything unusable routes to ``ask``."""
    try:
        data = json.loads(text)
        agent = str(data["agent"])
        confidence = min(1.0, max(0.0, float(data.get("confidence", 0.5))))
        reason = str(data.get("reason", ""))[:256]
    except (ValueError, KeyError, TypeError):
        return Route("ask", 0.5, "the routing answer was not understood")
    if agent not in ROUTABLE_AGENTS:
        return Route("ask", 0.5, f"unknown agent {agent!r} proposed")
    return Route(agent, confidence, reason)


class MultiAgentOrchestrator:
    """Runs conversations across agents; the one entry point of the domain."""

    def __init__(
        self,
        *,
        sessions: SessionManager,
        hitl: HITLManager,
        tools: ToolRunner,
        model: ChatModel,
        telemetry: Telemetry,
    ) -> None:
        self._sessions = sessions
        self._hitl = hitl
        self._tools = tools
        self._llm = LLMStreamService(model)
        self._telemetry = telemetry

    async def handle(
        self, session_id: str, message: str, agent: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Process one user message; yields the stream's events, ``done`` always last
        (unless the client went away, in which case the spans end as ``disconnected``)."""
        started = time.monotonic()
        request = RequestTrace(self._telemetry.spans, session_id)
        outcome, current = names.OUTCOME_DISCONNECTED, agent or ORCHESTRATOR
        error: BaseException | None = None
        try:
            yield StreamEvent(
                "meta", {"correlation_id": request.correlation_id, "session_id": session_id}
            )
            with request.request.activate():
                session, _ = await self._sessions.get_or_create(session_id)
                await self._sessions.add_message(session_id, "user", message)
            history = [ChatMessage("user", message)]
            if agent is not None:
                current = agent
                switch = AgentSwitched(
                    from_agent=session.agent or ORCHESTRATOR,
                    to_agent=agent,
                    trigger="user",
                    reason="the user chose the agent",
                    confidence=1.0,
                    session_id=session_id,
                )
                self._telemetry.emit(switch, span=request.request.span)
                yield _switch_event(switch)
            else:
                route = await self._route(request, history)
                current = route.to_agent
                yield _switch_event(route)
            async for event in self._run_agents(request, current, history):
                if event.event == "agent_switched":
                    current = event.data["to"]
                yield event
            outcome = _final_outcome(history)
            with request.request.activate():
                await self._sessions.set_agent(session_id, current)
        except ApprovalsClosed as exc:
            outcome = names.OUTCOME_SHUTDOWN
            yield StreamEvent("error", {"code": "shutdown", "message": str(exc)})
        except (ModelError, Exception) as exc:  # a real failure: the spans say ERROR
            error, outcome = exc, names.OUTCOME_ERROR
            yield StreamEvent("error", {"code": "agent_error", "message": _public_message(exc)})
        finally:
            request.finish(outcome, error)
        yield StreamEvent(
            "done",
            {
                "agent": current,
                "duration_ms": round((time.monotonic() - started) * 1e3, 1),
                "outcome": outcome,
            },
        )

    async def _route(self, request: RequestTrace, history: list[ChatMessage]) -> AgentSwitched:
        run = request.agent(ORCHESTRATOR)
        turn = await self._llm.complete(run, AGENTS[ORCHESTRATOR], history, [])
        route = parse_route(turn.text)
        switch = AgentSwitched(
            from_agent=ORCHESTRATOR,
            to_agent=route.agent,
            trigger="orchestrator",
            reason=route.reason,
            confidence=route.confidence,
            session_id=request.session_id,
        )
        self._telemetry.emit(switch, span=run.span)
        run.stop(names.OUTCOME_HANDED_OFF)
        return switch

    async def _run_agents(
        self, request: RequestTrace, agent: str, history: list[ChatMessage]
    ) -> AsyncIterator[StreamEvent]:
        for _ in range(MAX_HANDOFFS):
            spec = AGENTS[agent]
            run = request.agent(agent)
            next_agent: str | None = None
            for _ in range(MAX_MODEL_CALLS_PER_AGENT):
                turn = ModelTurn()
                async for delta in self._llm.stream(
                    run, spec, history, self._tools.specs_for(spec), turn
                ):
                    yield StreamEvent("text", {"agent": agent, "delta": delta})
                history.append(ChatMessage("assistant", turn.text or None, tuple(turn.tool_calls)))
                if not turn.tool_calls:
                    if turn.text:
                        await self._sessions.add_message(
                            request.session_id, "assistant", turn.text, agent=agent
                        )
                    run.stop(_final_outcome(history))
                    return
                for call in turn.tool_calls:
                    target = self._tools.handoff_target(spec, call.name)
                    if target is not None:
                        yield self._handoff(request, run, call, target, history)
                        next_agent = target
                        break
                    async for event in self._tools.execute(request, run, call, history):
                        yield event
                if next_agent is not None:
                    break
            if next_agent is None:
                run.stop(names.OUTCOME_COMPLETED)
                return
            agent = next_agent

    def _handoff(
        self,
        request: RequestTrace,
        run: AgentRun,
        call: ToolCall,
        target: str,
        history: list[ChatMessage],
    ) -> StreamEvent:
        self._tools.announce(request, run, call)
        handoff = request.handoff(run, target, call.id)
        reason = str(call.arguments.get("reason", ""))[:256] or f"{run.agent} asked for {target}"
        switch = AgentSwitched(
            from_agent=run.agent,
            to_agent=target,
            trigger="agent",
            reason=reason,
            confidence=1.0,
            session_id=request.session_id,
        )
        self._telemetry.emit(switch, span=run.span)
        handoff.stop("completed")
        run.stop(names.OUTCOME_HANDED_OFF)
        history.append(ChatMessage("tool", f"transferred to {target}", tool_call_id=call.id))
        return _switch_event(switch)

    def shutdown(self) -> None:
        """Stop waiting streams (their approvals stay pending) so the server can exit."""
        self._hitl.close()


def _switch_event(switch: AgentSwitched) -> StreamEvent:
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


def _final_outcome(history: list[ChatMessage]) -> str:
    """``rejected`` when the last tool result was a human's no, else ``completed``."""
    for message in reversed(history):
        if message.role == "tool":
            content = message.content or ""
            return (
                names.OUTCOME_REJECTED
                if content.startswith("rejected")
                else names.OUTCOME_COMPLETED
            )
    return names.OUTCOME_COMPLETED


def _public_message(exc: BaseException) -> str:
    if isinstance(exc, ModelError):
        return "the model provider failed mid-stream"
    return "the agent failed; see the trace for details"
