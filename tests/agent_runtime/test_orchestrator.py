"""MultiAgentOrchestrator and ToolRunner without HTTP: a runtime driven in process with the
scripted model (the same objects the API adapts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import ApprovalPending, SessionBusy, SessionNotFound, UnknownAgent
from agent_runtime.orchestrator import parse_route
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.stream_events import StreamEvent
from telemetry import names as n
from tests.support.otel import Telemetered


@pytest.fixture
async def runtime(telemetered: Telemetered, tmp_path: Path) -> AsyncIterator[Runtime]:
    started = await Runtime.start(Settings(data_dir=tmp_path / "data"))
    yield started
    await started.close()


async def _events(
    runtime: Runtime, session_id: str, message: str, **kwargs: Any
) -> list[StreamEvent]:
    return [event async for event in runtime.orchestrator.handle(session_id, message, **kwargs)]


async def _until_approval(runtime: Runtime, session_id: str, message: str) -> dict[str, Any]:
    """Run ``message`` up to its approval request, then drop the stream (a disconnect)."""
    stream = runtime.orchestrator.handle(session_id, message)
    try:
        async for event in stream:
            if event.event == "approval_required":
                return dict(event.data)
    finally:
        await stream.aclose()
    raise AssertionError("no approval was asked for")


def test_parse_route_falls_back_on_anything_unusable() -> None:
    routable = ("coder", "ask")
    assert (
        parse_route(
            '{"agent": "coder", "confidence": 2, "reason": "r"}', routable, "ask"
        ).confidence
        == 1.0
    )
    assert parse_route("not json", routable, "ask").agent == "ask"
    assert parse_route('{"agent": "orchestrator"}', routable, "ask").agent == "ask"
    assert parse_route('{"agent": "coder"}', routable, "coder").confidence == 0.5


async def test_a_question_is_routed_and_answered(runtime: Runtime) -> None:
    events = await _events(runtime, "o-ask", "What is a closure?")
    assert events[0].event == "meta" and events[-1].event == "done"
    switched = next(e for e in events if e.event == "agent_switched")
    assert (switched.data["to"], switched.data["trigger"]) == ("ask", "orchestrator")
    assert events[-1].data["outcome"] == n.OUTCOME_COMPLETED
    transcript = await runtime.sessions.messages("o-ask")
    assert [m.role for m in transcript] == ["user", "handoff", "assistant"]
    assert (await runtime.sessions.get("o-ask")).agent == "ask"


async def test_the_users_choice_is_a_user_switch_without_a_routing_call(
    runtime: Runtime, telemetered: Telemetered
) -> None:
    events = await _events(runtime, "o-user", "Anything", agent="architect")
    switched = next(e for e in events if e.event == "agent_switched")
    assert (switched.data["from"], switched.data["to"], switched.data["trigger"]) == (
        "orchestrator",
        "architect",
        "user",
    )
    assert "invoke_agent orchestrator" not in {s.name for s in telemetered.spans()}
    with pytest.raises(UnknownAgent):
        await runtime.orchestrator.begin("o-user", "x", agent="orchestrator")


async def test_a_paused_run_blocks_new_messages_until_decided_then_resumes_once(
    runtime: Runtime,
) -> None:
    approval = await _until_approval(runtime, "o-pause", "Create a sorting function")
    with pytest.raises(ApprovalPending):
        await runtime.orchestrator.begin("o-pause", "hello?")
    answer = await runtime.decide(approval["call_id"], "APPROVE", arguments=None, feedback=None)
    assert answer["resumed"] == "here"
    assert (answer["outcome"], answer["text"]) == ("completed", "I wrote sort.py. Done.")
    assert not await runtime.hitl.claim_resume(approval["call_id"])  # claimed once, by decide
    events = await _events(runtime, "o-pause", "What is a closure?")
    assert events[-1].data["outcome"] == "completed"


async def test_one_run_per_session(runtime: Runtime) -> None:
    first = await runtime.orchestrator.begin("o-busy", "What is a closure?")
    with pytest.raises(SessionBusy):
        await runtime.orchestrator.begin("o-busy", "And a generator?")
    [event async for event in first]
    second = await runtime.orchestrator.begin("o-busy", "And a generator?")
    assert [e.event async for e in second][-1] == "done"


async def test_a_deleted_session_takes_no_message(runtime: Runtime) -> None:
    await _events(runtime, "o-del", "What is a closure?")
    await runtime.sessions.delete("o-del")
    with pytest.raises(SessionNotFound):
        await runtime.orchestrator.begin("o-del", "still there?")


async def test_a_rejected_write_is_an_outcome_and_the_agent_hears_why(runtime: Runtime) -> None:
    approval = await _until_approval(runtime, "o-rej", "Create a sorting function")
    answer = await runtime.decide(approval["call_id"], "REJECT", arguments=None, feedback="not now")
    assert answer["outcome"] == n.OUTCOME_REJECTED
    assert answer["result"] == {
        "tool": "write_file",
        "outcome": "rejected",
        "output": "rejected: the user rejected it: not now",
        "decision": "REJECT",
    }
    transcript = await runtime.sessions.messages("o-rej")
    tool = next(m for m in transcript if m.role == "tool")
    assert tool.meta == {"outcome": "rejected", "decision": "REJECT"}
    assert transcript[-1].content == "The change to sort.py was rejected, so I made no changes."


async def test_a_tool_failure_is_a_failed_call_not_a_failed_request(
    runtime: Runtime, telemetered: Telemetered
) -> None:
    """debug's read_file is refused (outside the workspace); the run goes on: debug hands
    over to coder, whose write then waits for a human."""
    approval = await _until_approval(runtime, "o-fail", "Fix the bug in ../../etc/passwd.py")
    transcript = await runtime.sessions.messages("o-fail")
    read = next(m for m in transcript if m.role == "tool")
    assert read.meta == {"outcome": "failed"}
    assert (read.content or "").startswith("error: ")
    span = next(s for s in telemetered.spans() if s.name == "execute_tool read_file")
    assert span.attributes[n.TOOL_OUTCOME] == "failed"
    assert approval["tool"] == "write_file"


async def test_the_handoff_is_a_transfer_call_and_the_next_agent_sees_everything(
    runtime: Runtime, telemetered: Telemetered
) -> None:
    approval = await _until_approval(runtime, "o-hand", "Fix the bug in sort.py")
    await runtime.decide(approval["call_id"], "APPROVE", arguments=None, feedback=None)
    transcript = await runtime.sessions.messages("o-hand")
    roles = [(m.role, m.agent) for m in transcript]
    assert roles[:5] == [
        ("user", None),
        ("handoff", "debug"),
        ("assistant", "debug"),
        ("tool", "debug"),
        ("assistant", "debug"),
    ]
    assert transcript[4].tool_calls[0]["name"] == "transfer_to_coder"
    assert ("handoff", "coder") in roles
    handoff = next(s for s in telemetered.spans() if s.name == "execute_tool transfer_to_coder")
    assert handoff.attributes[n.GEN_AI_HANDOFF_TO_AGENT] == "coder"
