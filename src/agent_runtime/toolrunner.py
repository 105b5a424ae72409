"""Runs the tool calls an agent asks for: span, approval, execution, result.

Each call becomes an ``execute_tool`` span; risky tools wait for a human decision first
(HITL), with the span open the whole time. Tool failures (a refused path, a command not
allowed) are failed tool calls given back to the model, never request failures. The result
is a value (:class:`ToolCallResult`) whose outcome the run's outcome is derived from; the
text the model reads is only its ``output``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_runtime.agents import AgentSpec, handoff_target
from agent_runtime.errors import ToolError
from agent_runtime.hitl import Decision, HITLManager, Resolution
from agent_runtime.llm import ToolCall, ToolSpec
from agent_runtime.stream_events import StreamEvent
from agent_runtime.tools import ToolRegistry, Workspace
from telemetry import (
    AgentRun,
    EventSink,
    RequestTrace,
    ToolExecutionRequested,
    ToolOutcome,
    ToolRun,
)
from telemetry import names as n

_EDIT_NOTE_CHARS = 2_000


@dataclass(slots=True)
class ToolCallResult:
    """What one tool call came to: its outcome, the text the model reads, the decision."""

    outcome: ToolOutcome = n.OUTCOME_COMPLETED
    output: str = ""
    decision: Decision | None = None


class ToolRunner:
    """Executes tool calls inside the session's workspace, asking a human when needed."""

    def __init__(
        self,
        registry: ToolRegistry,
        hitl: HITLManager,
        events: EventSink,
        data_dir: Path,
        *,
        workspaces: Path | None = None,
    ) -> None:
        """``data_dir``: where the per-session workspace folders live (``workspaces/``);
        ``workspaces``: their folder instead (shared by the replicas)."""
        self._registry = registry
        self._hitl = hitl
        self._events = events
        self._data_dir = data_dir
        self._workspaces = workspaces

    @property
    def tool_names(self) -> frozenset[str]:
        """Every tool an agent may be given."""
        return frozenset(self._registry.names)

    def specs_for(self, spec: AgentSpec) -> list[ToolSpec]:
        """The agent's tools and its ``transfer_to_<agent>`` handoffs, as shown to the model."""
        tools = [
            ToolSpec(s.name, s.description, s.parameters)
            for s in self._registry.specs_for(spec.tools)
        ]
        for target in spec.handoffs:
            tools.append(
                ToolSpec(
                    spec.handoff_tool(target),
                    f"Hand the conversation over to the {target} agent.",
                    {"type": "object", "properties": {"reason": {"type": "string"}}},
                )
            )
        return tools

    @staticmethod
    def handoff_target(spec: AgentSpec, tool_name: str) -> str | None:
        """The agent ``tool_name`` hands over to, if ``spec`` may hand over to it."""
        target = handoff_target(tool_name)
        return target if target in spec.handoffs else None

    def announce(self, request: RequestTrace, run: AgentRun, call: ToolCall) -> None:
        """``tool.execution_requested`` on the agent's span, for tools and handoffs alike."""
        self._events.emit(
            ToolExecutionRequested(
                tool=call.name,
                call_id=call.id,
                agent=run.agent,
                arguments=call.arguments,
                session_id=request.session_id,
            ),
            span=run.span,
        )

    async def execute(
        self,
        request: RequestTrace,
        run: AgentRun,
        call: ToolCall,
        result: ToolCallResult,
        *,
        resolution: Resolution | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Run one call; yields ``tool_call``, maybe ``approval_required``, ``tool_result``,
        and fills ``result``.

        ``resolution``: the human already decided (a paused run resumed from the store):
        the call was announced and its approval asked for by the request that paused, so
        neither happens again.
        """
        if resolution is None:
            self.announce(request, run, call)
        yield StreamEvent("tool_call", {"call_id": call.id, "tool": call.name, "agent": run.agent})
        tool_run = request.tool(call.name, call.id, run=run)
        try:
            definition = self._registry.get(call.name)
            arguments = self._registry.validate(call.name, call.arguments)
            if resolution is None and definition.requires_approval:
                record = await self._hitl.request(
                    call_id=call.id,
                    session_id=request.session_id,
                    tool=call.name,
                    arguments=arguments,
                    agent=run.agent,
                    reason=definition.approval_reason or "the tool needs approval",
                    tool_run=tool_run,
                )
                try:
                    yield StreamEvent(
                        "approval_required",
                        {
                            "call_id": call.id,
                            "tool": call.name,
                            "arguments": arguments,
                            "timeout_s": record.timeout_s,
                        },
                    )
                    resolution = await self._hitl.wait(record)
                finally:  # the consumer may go away at the yield, before the wait began
                    self._hitl.release(call.id)
                # The stream resumes the run itself: claim it, so that nothing else does
                # (a stream that died before this line leaves the run to the sweeper).
                await self._hitl.claim_resume(call.id)
            if resolution is not None:
                result.decision = resolution.decision
                if not resolution.approved:
                    tool_run.stop(n.OUTCOME_REJECTED)
                    result.outcome, result.output = n.OUTCOME_REJECTED, _rejection(resolution)
                    yield _result(call, result)
                    return
                arguments = self._registry.validate(call.name, resolution.arguments)
            output = await self._run(tool_run, request.session_id, call.name, arguments)
            if resolution is not None and resolution.decision == "EDIT":
                output = f"{output}\n{_edited(arguments)}"
            result.output, result.outcome = output, n.OUTCOME_COMPLETED
            yield _result(call, result)
        except ToolError as exc:
            tool_run.fail(exc)
            result.outcome, result.output = n.OUTCOME_FAILED, f"error: {exc}"
            yield _result(call, result)

    async def _run(
        self, tool_run: ToolRun, session_id: str, tool: str, arguments: dict[str, Any]
    ) -> str:
        workspace = Workspace.for_session(self._data_dir, session_id, workspaces=self._workspaces)
        definition = self._registry.get(tool)
        with tool_run.activate():
            output = await definition.run(workspace, arguments)
        tool_run.stop(n.OUTCOME_COMPLETED)
        return output


def _edited(arguments: dict[str, Any]) -> str:
    """What the model is told of an EDIT: its call ran, but with the human's arguments."""
    shown = json.dumps(arguments, ensure_ascii=False)
    if len(shown) > _EDIT_NOTE_CHARS:
        shown = shown[:_EDIT_NOTE_CHARS] + "…"
    return f"note: the user edited the arguments before approving; the call ran with {shown}"


def _rejection(resolution: Resolution) -> str:
    why = "the approval timed out" if resolution.outcome == "timeout" else "the user rejected it"
    feedback = f": {resolution.feedback}" if resolution.feedback else ""
    return f"rejected: {why}{feedback}"


def _result(call: ToolCall, result: ToolCallResult) -> StreamEvent:
    data: dict[str, Any] = {
        "call_id": call.id,
        "tool": call.name,
        "outcome": result.outcome,
        "output": result.output,
    }
    if result.decision is not None:
        data["decision"] = result.decision
    return StreamEvent("tool_result", data)
