"""POST /agent/message/stream over real HTTP: events, trace tree, correlation, approvals."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from telemetry import names as n
from tests.service.conftest import Conversation
from tests.support.otel import Telemetered
from tests.support.server import RunningServer

APPROVE = {"decision": "APPROVE"}


def _tree(telemetered: Telemetered, trace_id: str) -> dict[str, list[str]]:
    """Children's names by parent name; the store's database client spans (PostgreSQL
    only) are left out: the flow's shape is the same on both backends."""
    telemetered.wait_for_span("POST /agent/message/stream")
    spans = [
        s
        for s in telemetered.spans()
        if f"{s.context.trace_id:032x}" == trace_id and "db.system" not in (s.attributes or {})
    ]
    by_id = {s.context.span_id: s for s in spans}
    children: dict[str, list[str]] = {}
    for span in spans:
        parent = by_id.get(span.parent.span_id) if span.parent else None
        children.setdefault(parent.name if parent else "<root>", []).append(span.name)
    return {k: sorted(v) for k, v in children.items()}


async def test_example_2_create_a_sorting_function_is_one_trace(
    client: httpx.AsyncClient, telemetered: Telemetered, make_settings, server: RunningServer
) -> None:
    conversation = Conversation(client)
    events = await conversation.send("s-sort", "Create a sorting function", decide=APPROVE)

    names = [e.event for e in events]
    assert names[0] == "meta" and names[-1] == "done"
    assert names.count("approval_required") == 1 and "tool_result" in names
    correlation_id = events[0].data["correlation_id"]
    assert conversation.headers is not None
    assert conversation.headers["x-correlation-id"] == correlation_id
    assert conversation.headers["traceresponse"].split("-")[1] == correlation_id
    assert conversation.of("agent_switched")[0] == {
        "from": "orchestrator",
        "to": "coder",
        "trigger": "orchestrator",
        "reason": conversation.of("agent_switched")[0]["reason"],
        "confidence": 0.9,
    }
    assert conversation.of("done")[0]["outcome"] == "completed"
    assert conversation.decisions[0].status_code == 200
    assert conversation.decisions[0].json()["resumed"] == "stream"
    written = Path(make_settings().data_dir, "workspaces", "s-sort", "sort.py")
    assert "def " in written.read_text()

    tree = _tree(telemetered, correlation_id)
    assert tree["<root>"] == ["POST /agent/message/stream"]
    assert tree["POST /agent/message/stream"] == ["agent.request"]
    assert tree["agent.request"] == ["invoke_agent coder", "invoke_agent orchestrator"]
    assert tree["invoke_agent orchestrator"] == ["chat scripted"]
    assert tree["invoke_agent coder"] == [
        "chat scripted",
        "chat scripted",
        "execute_tool write_file",
    ]

    orchestrator = telemetered.span("invoke_agent orchestrator")
    switched = next(e for e in orchestrator.events if e.name == n.EVENT_AGENT_SWITCHED)
    assert switched.attributes[n.SWITCH_TO] == "coder"
    assert switched.attributes[n.SWITCH_TRIGGER] == "orchestrator"
    coder = telemetered.span("invoke_agent coder")
    assert n.EVENT_TOOL_EXECUTION_REQUESTED in [e.name for e in coder.events]
    tool = telemetered.span("execute_tool write_file")
    assert [e.name for e in tool.events] == [
        n.EVENT_TOOL_APPROVAL_REQUIRED,
        n.EVENT_HITL_APPROVAL_REQUESTED,
        n.EVENT_HITL_DECISION_MADE,
    ]
    request = telemetered.span(n.SPAN_AGENT_REQUEST)
    assert request.attributes[n.GEN_AI_CONVERSATION_ID] == "s-sort"
    assert request.attributes[n.SESSION_ID] == "s-sort"

    decision = telemetered.span(n.SPAN_HITL_DECISION)
    assert f"{decision.context.trace_id:032x}" != correlation_id  # its own request's trace
    assert [link.context.span_id for link in decision.links] == [tool.context.span_id]

    audit = (await client.get("/v1/audit", params={"session_id": "s-sort"})).json()
    assert {r["event_type"] for r in audit} >= {"agent_switched", "hitl_decision_made"}
    assert {r["trace_id"] for r in audit} == {correlation_id}
    await server.app.state.runtime.telemetry.flush()  # ships the audit trail's queue
    log_trace_ids = {f"{log.log_record.trace_id:032x}" for log in telemetered.logs()}
    assert correlation_id in log_trace_ids


async def test_every_span_ends_exactly_once(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    await Conversation(client).send("s-once", "Create a sorting function", decide=APPROVE)
    ids = [s.context.span_id for s in telemetered.spans()]
    assert len(ids) == len(set(ids))


async def test_edit_runs_the_tool_with_the_modified_arguments(
    client: httpx.AsyncClient, telemetered: Telemetered, make_settings
) -> None:
    edited = {"path": "sort.py", "content": "EDITED = True\n"}
    conversation = Conversation(client)
    await conversation.send(
        "s-edit", "Create a sorting function", decide={"decision": "EDIT", "arguments": edited}
    )
    assert conversation.of("tool_result")[0]["decision"] == "EDIT"
    path = Path(make_settings().data_dir, "workspaces", "s-edit", "sort.py")
    assert path.read_text() == "EDITED = True\n"
    event = next(
        e
        for e in telemetered.span("execute_tool write_file").events
        if e.name == n.EVENT_HITL_DECISION_MADE
    )
    assert event.attributes[n.HITL_DECISION] == "EDIT" and event.attributes[n.HITL_MODIFIED]


async def test_reject_is_an_outcome_not_an_error(
    client: httpx.AsyncClient, telemetered: Telemetered, make_settings
) -> None:
    conversation = Conversation(client)
    await conversation.send(
        "s-rej", "Create a sorting function", decide={"decision": "REJECT", "feedback": "no"}
    )
    assert conversation.of("tool_result")[0]["outcome"] == "rejected"
    assert conversation.of("done")[0]["outcome"] == "rejected"
    assert not Path(make_settings().data_dir, "workspaces", "s-rej", "sort.py").exists()
    tool = telemetered.span("execute_tool write_file")
    assert tool.status.status_code is StatusCode.UNSET
    assert tool.attributes[n.TOOL_OUTCOME] == "rejected"
    assert all(s.status.status_code is not StatusCode.ERROR for s in telemetered.spans())
    metrics = (await client.get("/v1/metrics")).json()
    assert metrics["tool_executions"]["write_file"]["rejected"] == 1
    assert metrics["tool_executions"]["write_file"]["completed"] == 0
    assert metrics["hitl_decisions"]["write_file"]["REJECT"] == 1


async def test_fail_marker_ends_with_error_event_and_error_spans(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    conversation = Conversation(client)
    events = await conversation.send("s-fail", "What is a closure? [fail]")
    assert [e.event for e in events][-2:] == ["error", "done"]
    assert conversation.of("done")[0]["outcome"] == "error"
    failed = [s for s in telemetered.spans() if s.status.status_code is StatusCode.ERROR]
    assert {s.name for s in failed} >= {"invoke_agent orchestrator", n.SPAN_AGENT_REQUEST}
    agent = telemetered.span("invoke_agent orchestrator")
    assert agent.attributes[n.ERROR_TYPE]
    assert any(e.name == "exception" for e in agent.events)
    ids = [s.context.span_id for s in telemetered.spans()]
    assert len(ids) == len(set(ids))
    assert telemetered.metric(n.METRIC_ERRORS) == 1


async def test_incoming_traceparent_is_continued(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    conversation = Conversation(client)
    events = await conversation.send("s-tp", "What is a closure?", headers=headers)
    assert events[0].data["correlation_id"] == trace_id
    assert conversation.headers is not None
    assert conversation.headers["x-correlation-id"] == trace_id
    server_span = telemetered.wait_for_span("POST /agent/message/stream")
    assert server_span.kind is SpanKind.SERVER
    assert server_span.parent is not None and server_span.parent.span_id == 0x00F067AA0BA902B7


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        "00-xyz-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ],
)
async def test_malformed_traceparent_starts_a_fresh_trace(
    client: httpx.AsyncClient, telemetered: Telemetered, traceparent: str
) -> None:
    conversation = Conversation(client)
    events = await conversation.send(
        "s-bad-tp", "What is a closure?", headers={"traceparent": traceparent}
    )
    correlation_id = events[0].data["correlation_id"]
    assert len(correlation_id) == 32 and int(correlation_id, 16) != 0
    assert telemetered.wait_for_span("POST /agent/message/stream").parent is None


async def test_debug_hands_over_to_coder_at_its_own_request(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    conversation = Conversation(client)
    await conversation.send("s-dbg", "Create a sorting function", decide=APPROVE)
    telemetered.reset()
    conversation = Conversation(client)
    await conversation.send("s-dbg", "Fix the bug in sort.py", decide=APPROVE)
    switches = conversation.of("agent_switched")
    assert [(s["from"], s["to"], s["trigger"]) for s in switches] == [
        ("orchestrator", "debug", "orchestrator"),
        ("debug", "coder", "agent"),
    ]
    handoff = telemetered.span("execute_tool transfer_to_coder")
    assert handoff.attributes[n.GEN_AI_HANDOFF_FROM_AGENT] == "debug"
    assert handoff.attributes[n.GEN_AI_HANDOFF_TO_AGENT] == "coder"
    debug = telemetered.span("invoke_agent debug")
    assert debug.attributes[n.AGENT_OUTCOME] == "handed_off"
    assert (
        telemetered.metric(
            n.METRIC_AGENT_SWITCHES, {n.SWITCH_FROM: "debug", n.SWITCH_TRIGGER: "agent"}
        )
        == 1
    )


async def test_explicit_agent_is_a_user_switch(
    client: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    conversation = Conversation(client)
    await conversation.send("s-user", "Tell me about design", agent="architect")
    assert conversation.of("agent_switched")[0]["trigger"] == "user"
    names_ = {s.name for s in telemetered.spans()}
    assert "invoke_agent architect" in names_ and "invoke_agent orchestrator" not in names_
