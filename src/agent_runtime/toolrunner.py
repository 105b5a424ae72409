"""Runs the tool calls an agent asks for: span, approval, execution, result.

Each call becomes an ``execute_tool`` span; risky tools wait for a human decision first
(HITL), with the span open the whole time. Tool failures (a refused path, a command not
allowed) are failed tool calls given back to the model, never request failures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent_runtime.agents import AgentSpec, handoff_target
from agent_runtime.errors import ToolError
from agent_runtime.hitl import HITLManager, Resolution
from agent_runtime.llm import ChatMessage, ToolCall, ToolSpec
from agent_runtime.store import ApprovalRecord
from agent_runtime.stream_events import StreamEvent
from agent_runtime.tools import ToolRegistry, Workspace
from telemetry import AgentRun, RequestTrace, Telemetry, ToolExecutionRequested, ToolRun


class ToolRunner:
    """Executes tool calls inside the session's workspace, asking a human when needed."""

    def __init__(
        self, registry: ToolRegistry, hitl: HITLManager, telemetry: Telemetry, data_dir: Path
    ) -> None:
        self._registry = registry
        self._hitl = hitl
        self._telemetry = telemetry
        self._data_dir = data_dir

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
        self._telemetry.emit(
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
        self, request: RequestTrace, run: AgentRun, call: ToolCall, history: list[ChatMessage]
    ) -> AsyncIterator[StreamEvent]:
        """Run one call; yields ``tool_call``, maybe ``approval_required``, ``tool_result``."""
        self.announce(request, run, call)
        yield StreamEvent("tool_call", {"call_id": call.id, "tool": call.name, "agent": run.agent})
        tool_run = request.tool(call.name, call.id, run=run)
        try:
            definition = self._registry.get(call.name)
            arguments = self._registry.validate(call.name, call.arguments)
            if definition.requires_approval:
                record = await self._hitl.request(
                    call_id=call.id,
                    session_id=request.session_id,
                    tool=call.name,
                    arguments=arguments,
                    agent=run.agent,
                    reason=definition.approval_reason or "the tool needs approval",
                    tool_run=tool_run,
                )
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
                if not resolution.approved:
                    tool_run.stop("rejected")
                    result = _rejection(resolution)
                    history.append(ChatMessage("tool", result, tool_call_id=call.id))
                    yield _result(call, "rejected", result, resolution)
                    return
                arguments = self._registry.validate(call.name, resolution.arguments)
            else:
                resolution = None
            output = await self._run(tool_run, request.session_id, call.name, arguments)
            history.append(ChatMessage("tool", output, tool_call_id=call.id))
            yield _result(call, "completed", output, resolution)
        except ToolError as exc:
            tool_run.fail(exc)
            message = f"error: {exc}"
            history.append(ChatMessage("tool", message, tool_call_id=call.id))
            yield _result(call, "failed", message, None)

    async def resume(self, record: ApprovalRecord, resolution: Resolution) -> dict[str, Any]:
        """Run an approved call whose stream is gone, in the deciding request's trace."""
        if not resolution.approved:
            return {"outcome": "rejected"}
        from opentelemetry import context as otel_context

        tool_run = self._telemetry.spans.tool(
            record.tool,
            record.call_id,
            agent=record.agent,
            parent=otel_context.get_current(),
            session_id=record.session_id,
        )
        try:
            arguments = self._registry.validate(record.tool, resolution.arguments)
            output = await self._run(tool_run, record.session_id, record.tool, arguments)
        except ToolError as exc:
            tool_run.fail(exc)
            return {"outcome": "failed", "error": str(exc)}
        return {"outcome": "completed", "output": output}

    async def _run(
        self, tool_run: ToolRun, session_id: str, tool: str, arguments: dict[str, Any]
    ) -> str:
        workspace = Workspace.for_session(self._data_dir, session_id)
        definition = self._registry.get(tool)
        with tool_run.activate():
            output = await definition.run(workspace, arguments)
        tool_run.stop("completed")
        return output


def _rejection(resolution: Resolution) -> str:
    why = "the approval timed out" if resolution.outcome == "timeout" else "the user rejected it"
    feedback = f": {resolution.feedback}" if resolution.feedback else ""
    return f"rejected: {why}{feedback}"


def _result(
    call: ToolCall, outcome: str, output: str, resolution: Resolution | None
) -> StreamEvent:
    data: dict[str, Any] = {
        "call_id": call.id,
        "tool": call.name,
        "outcome": outcome,
        "output": output,
    }
    if resolution is not None:
        data["decision"] = resolution.decision
    return StreamEvent("tool_result", data)
