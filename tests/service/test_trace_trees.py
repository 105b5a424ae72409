"""One trace-tree snapshot per flow, over real HTTP on the SDK's own span pipeline: each test
reads like the seed's timeline (span names nested with their events, tests/support/trace_tree.py)
and compares the whole story of the flow with one literal, the decision request's trace
included. A change to the trace model (a span moved, an event lost or duplicated, an outcome
turned into an error) changes the picture and fails the test; so does a span left open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent
from typing import Any

import httpx

from agent_runtime.app import create_app
from agent_runtime.settings import Settings
from telemetry import names as n
from tests.service.conftest import Conversation
from tests.support.otel import Telemetered
from tests.support.server import serve, sse_events
from tests.support.trace_tree import render, trace_ids


def _story(telemetered: Telemetered, *, requests: int, timeout_s: float = 10.0) -> str:
    """Every trace of the test, oldest first, once its ``requests`` server spans ended (the
    server span ends after the last byte, so a client that read it all may be ahead)."""
    deadline = time.monotonic() + timeout_s
    while True:
        servers = [s for s in telemetered.spans() if s.name.startswith("POST /")]
        if len(servers) >= requests or time.monotonic() > deadline:
            break
        time.sleep(0.002)
    assert len(servers) == requests, [s.name for s in servers]
    telemetered.ledger.assert_each_ended_once()
    spans = telemetered.spans()
    return "\n\n".join(render(spans, trace_id) for trace_id in trace_ids(spans))


def _picture(text: str) -> str:
    return dedent(text).strip("\n")


ROUTED_TO_CODER = """\
   ├─ · session.message_added  role=user content_length=25
   ├─ invoke_agent orchestrator  outcome=handed_off
   │  ├─ chat scripted
   │  └─ · agent.switched  from=orchestrator to=coder trigger=orchestrator \
reason="the message mentions 'create'" confidence=0.9
   ├─ · session.message_added  role=handoff content_length=29"""
"""The orchestrator's part of every "Create a sorting function" request."""
APPROVAL_REQUIRED = '· tool.approval_required  tool=write_file reason="writes to the workspace"'


async def test_ask_is_routed_and_answered_in_text(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    await Conversation(client).send("t-ask", "What is a closure?")
    assert _story(telemetered, requests=1) == _picture("""
        POST /agent/message/stream
        ├─ · session.created  session=t-ask
        └─ agent.request  outcome=completed
           ├─ · session.message_added  role=user content_length=18
           ├─ invoke_agent orchestrator  outcome=handed_off
           │  ├─ chat scripted
           │  └─ · agent.switched  from=orchestrator to=ask trigger=orchestrator \
reason="no create, fix or design request: answer the question" confidence=0.6
           ├─ · session.message_added  role=handoff content_length=53
           ├─ invoke_agent ask  outcome=completed
           │  └─ chat scripted
           ├─ · session.message_added  role=assistant content_length=143
           └─ · session.updated  agent=ask
        """)


def _coder_story(session_id: str, outcome: str, decision: str, tool_length: int) -> str:
    """A coder request whose ``write_file`` a human decided while the stream waited."""
    final = {"completed": 22, "rejected": 57}[outcome]
    tool_outcome = "rejected" if decision.startswith("decision=REJECT") else "completed"
    return "\n".join(
        [
            "POST /agent/message/stream",
            f"├─ · session.created  session={session_id}",
            f"└─ agent.request  outcome={outcome}",
            ROUTED_TO_CODER,
            f"   ├─ invoke_agent coder  outcome={outcome}",
            "   │  ├─ chat scripted",
            "   │  ├─ · tool.execution_requested  tool=write_file",
            f"   │  ├─ execute_tool write_file  outcome={tool_outcome}",
            f"   │  │  ├─ {APPROVAL_REQUIRED}",
            "   │  │  ├─ · hitl.approval_requested  tool=write_file timeout_s=300.0",
            f"   │  │  └─ · hitl.decision_made  tool=write_file {decision}",
            "   │  └─ chat scripted",
            "   ├─ · session.message_added  role=assistant content_length=0",
            f"   ├─ · session.message_added  role=tool content_length={tool_length}",
            f"   ├─ · session.message_added  role=assistant content_length={final}",
            "   └─ · session.updated  agent=coder",
            "",
            "POST /v1/approvals/{call_id}",
            "└─ hitl.decision  → linked to execute_tool write_file",
        ]
    )


async def test_coder_approve_runs_the_tool_and_the_decision_links_to_the_waiting_span(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    await Conversation(client).send(
        "t-approve", "Create a sorting function", decide={"decision": "APPROVE"}
    )
    assert _story(telemetered, requests=2) == _coder_story(
        "t-approve", "completed", "decision=APPROVE modified=false outcome=decided", 26
    )


async def test_coder_edit_runs_the_tool_with_the_humans_arguments(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    edited = {"path": "sort.py", "content": "X = 1\n"}
    await Conversation(client).send(
        "t-edit", "Create a sorting function", decide={"decision": "EDIT", "arguments": edited}
    )
    assert _story(telemetered, requests=2) == _coder_story(
        "t-edit", "completed", "decision=EDIT modified=true outcome=decided", 138
    )


async def test_coder_reject_is_an_outcome_not_an_error(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    await Conversation(client).send(
        "t-reject",
        "Create a sorting function",
        decide={"decision": "REJECT", "feedback": "not now"},
    )
    assert _story(telemetered, requests=2) == _coder_story(
        "t-reject",
        "rejected",
        "decision=REJECT modified=false outcome=decided feedback_length=7",
        39,
    )


async def test_debug_hands_over_to_coder_through_a_transfer_call(
    client: httpx.AsyncClient, telemetered: Telemetered, make_settings: Callable[..., Settings]
) -> None:
    workspace = Path(make_settings().data_dir, "workspaces", "t-handoff")
    workspace.mkdir(parents=True)
    (workspace / "sort.py").write_text("def sort(xs):\n    return xs\n")
    await Conversation(client).send(
        "t-handoff", "Fix the bug in sort.py", decide={"decision": "APPROVE"}
    )
    assert _story(telemetered, requests=2) == _picture("""
        POST /agent/message/stream
        ├─ · session.created  session=t-handoff
        └─ agent.request  outcome=completed
           ├─ · session.message_added  role=user content_length=22
           ├─ invoke_agent orchestrator  outcome=handed_off
           │  ├─ chat scripted
           │  └─ · agent.switched  from=orchestrator to=debug trigger=orchestrator \
reason="the message mentions 'bug'" confidence=0.85
           ├─ · session.message_added  role=handoff content_length=26
           ├─ invoke_agent debug  outcome=handed_off
           │  ├─ chat scripted
           │  ├─ · tool.execution_requested  tool=read_file
           │  ├─ execute_tool read_file  outcome=completed
           │  ├─ chat scripted
           │  ├─ · tool.execution_requested  tool=transfer_to_coder
           │  ├─ execute_tool transfer_to_coder  outcome=completed from_agent=debug to_agent=coder
           │  └─ · agent.switched  from=debug to=coder trigger=agent \
reason="the fix needs a code change" confidence=1.0
           ├─ · session.message_added  role=assistant content_length=0
           ├─ · session.message_added  role=tool content_length=28
           ├─ · session.message_added  role=assistant content_length=0
           ├─ · session.message_added  role=tool content_length=20
           ├─ · session.message_added  role=handoff content_length=27
           ├─ invoke_agent coder  outcome=completed
           │  ├─ chat scripted
           │  ├─ · tool.execution_requested  tool=write_file
           │  ├─ execute_tool write_file  outcome=completed
           │  │  ├─ · tool.approval_required  tool=write_file reason="writes to the workspace"
           │  │  ├─ · hitl.approval_requested  tool=write_file timeout_s=300.0
           │  │  └─ · hitl.decision_made  tool=write_file decision=APPROVE modified=false \
outcome=decided
           │  └─ chat scripted
           ├─ · session.message_added  role=assistant content_length=0
           ├─ · session.message_added  role=tool content_length=26
           ├─ · session.message_added  role=assistant content_length=22
           └─ · session.updated  agent=coder

        POST /v1/approvals/{call_id}
        └─ hitl.decision  → linked to execute_tool write_file
        """)


async def test_the_users_choice_switches_on_the_request_span_without_a_routing_call(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    await Conversation(client).send("t-user", "Sketch the modules", agent="architect")
    assert _story(telemetered, requests=1) == _picture("""
        POST /agent/message/stream
        ├─ · session.created  session=t-user
        └─ agent.request  outcome=completed
           ├─ · session.message_added  role=user content_length=18
           ├─ · agent.switched  from=orchestrator to=architect trigger=user \
reason="the user chose the agent" confidence=1.0
           ├─ · session.message_added  role=handoff content_length=24
           ├─ invoke_agent architect  outcome=completed
           │  └─ chat scripted
           ├─ · session.message_added  role=assistant content_length=210
           └─ · session.updated  agent=architect
        """)


async def test_an_approval_timeout_is_a_reject_with_outcome_timeout(
    telemetered: Telemetered, make_settings: Callable[..., Settings]
) -> None:
    with serve(create_app(make_settings(approval_timeout_s=0.2))) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            await Conversation(http).send("t-timeout", "Create a sorting function")
    assert _story(telemetered, requests=1) == "\n".join(
        [
            "POST /agent/message/stream",
            "├─ · session.created  session=t-timeout",
            "└─ agent.request  outcome=rejected",
            ROUTED_TO_CODER,
            "   ├─ invoke_agent coder  outcome=rejected",
            "   │  ├─ chat scripted",
            "   │  ├─ · tool.execution_requested  tool=write_file",
            "   │  ├─ execute_tool write_file  outcome=rejected",
            f"   │  │  ├─ {APPROVAL_REQUIRED}",
            "   │  │  ├─ · hitl.approval_requested  tool=write_file timeout_s=0.2",
            "   │  │  └─ · hitl.decision_made  tool=write_file decision=REJECT modified=false "
            "outcome=timeout",
            "   │  └─ chat scripted",
            "   ├─ · session.message_added  role=assistant content_length=0",
            "   ├─ · session.message_added  role=tool content_length=32",
            "   ├─ · session.message_added  role=assistant content_length=57",
            "   └─ · session.updated  agent=coder",
        ]
    )


async def test_a_provider_failure_is_an_error_on_every_span_it_crosses(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    await Conversation(client).send("t-fail", "What is a closure? [fail]")
    error = "agent_runtime.llm.base.ModelError"
    exception = f"· exception  exception.type={error} escaped=False"
    assert _story(telemetered, requests=1) == _picture(f"""
        POST /agent/message/stream
        ├─ · session.created  session=t-fail
        └─ agent.request  outcome=error ERROR {error}
           ├─ · session.message_added  role=user content_length=25
           ├─ invoke_agent orchestrator  outcome=error ERROR {error}
           │  ├─ chat scripted  ERROR {error}
           │  │  └─ {exception}
           │  └─ {exception}
           └─ {exception}
        """)


async def test_a_decision_after_the_stream_left_resumes_the_run_in_its_own_trace(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    body: dict[str, Any] = {"session_id": "t-here", "message": "Create a sorting function"}
    call_id = ""
    async with client.stream("POST", "/agent/message/stream", json=body) as response:
        async for event in sse_events(response):
            if event.event == "approval_required":
                call_id = event.data["call_id"]
                break  # the client leaves while the run waits for a human
    telemetered.wait_for_span(n.SPAN_AGENT_REQUEST)  # the stream's spans ended: disconnected
    decided = await client.post(f"/v1/approvals/{call_id}", json={"decision": "APPROVE"})
    assert decided.json()["resumed"] == "here"
    assert _story(telemetered, requests=2) == _picture("""
        POST /agent/message/stream
        ├─ · session.created  session=t-here
        └─ agent.request  outcome=disconnected
           ├─ · session.message_added  role=user content_length=25
           ├─ invoke_agent orchestrator  outcome=handed_off
           │  ├─ chat scripted
           │  └─ · agent.switched  from=orchestrator to=coder trigger=orchestrator \
reason="the message mentions 'create'" confidence=0.9
           ├─ · session.message_added  role=handoff content_length=29
           ├─ invoke_agent coder  outcome=disconnected
           │  ├─ chat scripted
           │  ├─ · tool.execution_requested  tool=write_file
           │  └─ execute_tool write_file  outcome=disconnected
           │     ├─ · tool.approval_required  tool=write_file reason="writes to the workspace"
           │     └─ · hitl.approval_requested  tool=write_file timeout_s=300.0
           └─ · session.message_added  role=assistant content_length=0

        POST /v1/approvals/{call_id}
        ├─ hitl.decision  → linked to execute_tool write_file
        │  └─ · hitl.decision_made  tool=write_file decision=APPROVE modified=false outcome=decided
        └─ agent.request  outcome=completed → linked to execute_tool write_file
           ├─ invoke_agent coder  outcome=completed
           │  ├─ execute_tool write_file  outcome=completed
           │  └─ chat scripted
           ├─ · session.message_added  role=tool content_length=26
           ├─ · session.message_added  role=assistant content_length=22
           └─ · session.updated  agent=coder
        """)
