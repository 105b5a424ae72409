"""Span factories (docs/architecture.md): the request → agent → tool tree, outcomes vs errors,
idempotent ends, handoffs and the decision span's link."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import telemetry
from telemetry import names as n
from tests.support.otel import Telemetered


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def test_request_agent_tool_form_one_tree(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = hub.spans.request("s1")
    run = hub.spans.agent("coder", conversation_id="s1", parent=request.context)
    tool = hub.spans.tool("write_file", "c1", agent="coder", parent=run.context, session_id="s1")
    tool.stop("completed")
    run.stop()
    request.stop(n.OUTCOME_COMPLETED)

    root = telemetered.span(n.SPAN_AGENT_REQUEST)
    agent = telemetered.span("invoke_agent coder")
    tool_span = telemetered.span("execute_tool write_file")
    assert _parent_id(agent) == _span_id(root)
    assert _parent_id(tool_span) == _span_id(agent)
    assert root.context is not None and tool_span.context is not None
    assert root.context.trace_id == tool_span.context.trace_id
    assert request.correlation_id == trace.format_trace_id(root.context.trace_id)


def test_request_span_carries_conversation_and_session_id(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    hub.spans.request("s1").stop(n.OUTCOME_COMPLETED)
    attributes = telemetered.span(n.SPAN_AGENT_REQUEST).attributes or {}
    assert attributes[n.GEN_AI_CONVERSATION_ID] == "s1"
    assert attributes[n.SESSION_ID] == "s1"
    assert attributes[n.REQUEST_OUTCOME] == n.OUTCOME_COMPLETED


def test_request_span_nests_under_the_current_server_span(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    with trace.get_tracer("tests").start_as_current_span("POST /agent/message/stream"):
        hub.spans.request("s1").stop(n.OUTCOME_COMPLETED)
    server = telemetered.span("POST /agent/message/stream")
    assert _parent_id(telemetered.span(n.SPAN_AGENT_REQUEST)) == _span_id(server)


def test_agent_and_tool_spans_carry_genai_attributes(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = hub.spans.request("s1")
    run = hub.spans.agent("coder", conversation_id="s1", parent=request.context)
    tool = hub.spans.tool("write_file", "c1", agent="coder", parent=run.context, session_id="s1")
    tool.stop("completed")
    run.stop()
    request.stop(n.OUTCOME_COMPLETED)

    agent_attrs = telemetered.span("invoke_agent coder").attributes or {}
    assert agent_attrs[n.GEN_AI_OPERATION_NAME] == n.OPERATION_INVOKE_AGENT
    assert agent_attrs[n.GEN_AI_AGENT_NAME] == "coder"
    assert agent_attrs[n.GEN_AI_CONVERSATION_ID] == "s1"
    assert agent_attrs[n.AGENT_OUTCOME] == n.OUTCOME_COMPLETED
    tool_attrs = telemetered.span("execute_tool write_file").attributes or {}
    assert tool_attrs[n.GEN_AI_OPERATION_NAME] == n.OPERATION_EXECUTE_TOOL
    assert tool_attrs[n.GEN_AI_TOOL_NAME] == "write_file"
    assert tool_attrs[n.GEN_AI_TOOL_CALL_ID] == "c1"
    assert tool_attrs[n.TOOL_OUTCOME] == "completed"


@pytest.mark.parametrize(
    "outcome", [n.OUTCOME_REJECTED, n.OUTCOME_TIMEOUT, n.OUTCOME_DISCONNECTED, n.OUTCOME_HANDED_OFF]
)
def test_outcomes_are_not_errors(
    hub: telemetry.Telemetry, telemetered: Telemetered, outcome: str
) -> None:
    request = hub.spans.request("s1")
    run = hub.spans.agent("coder", conversation_id="s1", parent=request.context)
    tool = hub.spans.tool("write_file", "c1", agent="coder", parent=run.context, session_id="s1")
    tool.stop(outcome)
    run.stop(outcome)
    request.stop(outcome)
    for span in telemetered.spans():
        assert span.status.status_code is StatusCode.UNSET, span.name
        assert n.ERROR_TYPE not in (span.attributes or {}), span.name
    assert (telemetered.span("invoke_agent coder").attributes or {})[n.AGENT_OUTCOME] == outcome
    assert (telemetered.span("execute_tool write_file").attributes or {})[n.TOOL_OUTCOME] == outcome
    assert (telemetered.span(n.SPAN_AGENT_REQUEST).attributes or {})[n.REQUEST_OUTCOME] == outcome
    assert hub.audit is not None
    assert hub.audit.get_audit_log(event_type=n.EVENT_AGENT_ERROR) == []


def test_agent_fail_sets_error_status_type_exception_event_and_audits(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = hub.spans.request("s1")
    run = hub.spans.agent("coder", conversation_id="s1", parent=request.context)
    run.fail(ValueError("model went away"))
    request.stop(n.OUTCOME_ERROR)

    span = telemetered.span("invoke_agent coder")
    assert span.status.status_code is StatusCode.ERROR
    attributes = span.attributes or {}
    assert attributes[n.ERROR_TYPE] == "ValueError"
    assert attributes[n.AGENT_OUTCOME] == n.OUTCOME_ERROR
    exceptions = [e for e in span.events if e.name == "exception"]
    assert len(exceptions) == 1
    assert (exceptions[0].attributes or {})["exception.type"] == "ValueError"
    assert telemetered.metric(n.METRIC_ERRORS, {n.ERROR_TYPE: "ValueError"}) == 1
    assert hub.audit is not None
    (record,) = hub.audit.get_audit_log(event_type=n.EVENT_AGENT_ERROR)
    assert record["trace_id"] == request.correlation_id
    assert record["attributes"][n.ERROR_TYPE] == "ValueError"
    processing = hub.metrics.get_metrics()["agent_processing"]["coder"]
    assert processing == {**processing, "count": 1, "success_count": 0, "failure_count": 1}


def test_error_type_is_the_qualified_class_name() -> None:
    class ProviderError(Exception):
        pass

    assert telemetry.error_type(ValueError()) == "ValueError"
    assert telemetry.error_type(ProviderError()).endswith(".ProviderError")
    assert telemetry.error_type(ProviderError()).startswith(__name__)


def test_tool_fail_is_an_error_and_counts_as_failed(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = hub.spans.request("s1")
    run = hub.spans.agent("coder", conversation_id="s1", parent=request.context)
    tool = hub.spans.tool("write_file", "c1", agent="coder", parent=run.context, session_id="s1")
    tool.fail(PermissionError("path leaves the workspace"))
    run.stop()
    request.stop(n.OUTCOME_COMPLETED)
    span = telemetered.span("execute_tool write_file")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[n.ERROR_TYPE] == "PermissionError"
    assert (span.attributes or {})[n.TOOL_OUTCOME] == "failed"
    assert hub.metrics.get_metrics()["tool_executions"]["write_file"]["failed"] == 1
    assert (
        telemetered.metric(
            n.METRIC_TOOL_CALLS, {n.GEN_AI_TOOL_NAME: "write_file", n.TOOL_OUTCOME: "failed"}
        )
        == 1
    )


def test_stop_and_fail_are_idempotent(hub: telemetry.Telemetry, telemetered: Telemetered) -> None:
    request = hub.spans.request("s1")
    run = hub.spans.agent("coder", conversation_id="s1", parent=request.context)
    tool = hub.spans.tool("write_file", "c1", agent="coder", parent=run.context, session_id="s1")
    tool.stop("completed")
    tool.stop("completed")
    tool.fail(RuntimeError("late"))
    run.fail(RuntimeError("boom"))
    run.fail(RuntimeError("again"))
    run.stop()
    request.stop(n.OUTCOME_ERROR)
    request.stop(n.OUTCOME_COMPLETED)
    request.fail(RuntimeError("late"))

    assert sorted(s.name for s in telemetered.spans()) == [
        n.SPAN_AGENT_REQUEST,
        "execute_tool write_file",
        "invoke_agent coder",
    ]
    telemetered.ledger.assert_each_ended_once()
    assert telemetered.span("execute_tool write_file").status.status_code is StatusCode.UNSET
    assert (telemetered.span(n.SPAN_AGENT_REQUEST).attributes or {})[
        n.REQUEST_OUTCOME
    ] == n.OUTCOME_ERROR
    assert telemetered.metric(n.METRIC_ERRORS) == 1
    assert hub.metrics.get_metrics()["agent_processing"]["coder"]["count"] == 1
    assert hub.metrics.get_metrics()["tool_executions"]["write_file"]["completed"] == 1
    assert telemetered.metric(n.METRIC_INVOKE_AGENT_DURATION) == 1


def test_request_fail_records_the_exception(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = hub.spans.request("s1")
    request.fail(KeyError("k"))
    request.fail(KeyError("k"))
    span = telemetered.span(n.SPAN_AGENT_REQUEST)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[n.ERROR_TYPE] == "KeyError"
    assert (span.attributes or {})[n.REQUEST_OUTCOME] == n.OUTCOME_ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_agent_start_and_end_feed_processing_metrics(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = hub.spans.request("s1")
    hub.spans.agent("ask", conversation_id="s1", parent=request.context).stop()
    hub.spans.agent("ask", conversation_id="s1", parent=request.context).stop(n.OUTCOME_REJECTED)
    request.stop(n.OUTCOME_COMPLETED)
    processing = hub.metrics.get_metrics()["agent_processing"]["ask"]
    assert processing["count"] == 2
    assert processing["success_count"] == 2
    assert telemetered.metric(n.METRIC_INVOKE_AGENT_DURATION, {n.GEN_AI_AGENT_NAME: "ask"}) == 2


def test_activate_makes_the_agent_the_current_span(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = hub.spans.request("s1")
    run = hub.spans.agent("coder", conversation_id="s1", parent=request.context)
    with run.activate():
        assert trace.get_current_span() is run.span
        with trace.get_tracer("tests").start_as_current_span("chat scripted"):
            pass
    assert trace.get_current_span() is not run.span
    run.stop()
    request.stop(n.OUTCOME_COMPLETED)
    assert _parent_id(telemetered.span("chat scripted")) == _span_id(
        telemetered.span("invoke_agent coder")
    )


def test_handoff_span_has_the_peers_shape(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = hub.spans.request("s1")
    run = hub.spans.agent("debug", conversation_id="s1", parent=request.context)
    handoff = hub.spans.handoff("debug", "coder", "c9", parent=run.context, session_id="s1")
    handoff.stop("completed")
    run.stop(n.OUTCOME_HANDED_OFF)
    request.stop(n.OUTCOME_COMPLETED)
    span = telemetered.span(f"execute_tool {n.HANDOFF_TOOL_PREFIX}coder")
    attributes = span.attributes or {}
    assert attributes[n.GEN_AI_HANDOFF_FROM_AGENT] == "debug"
    assert attributes[n.GEN_AI_HANDOFF_TO_AGENT] == "coder"
    assert attributes[n.GEN_AI_TOOL_NAME] == f"{n.HANDOFF_TOOL_PREFIX}coder"
    assert attributes[n.GEN_AI_OPERATION_NAME] == n.OPERATION_EXECUTE_TOOL
    assert _parent_id(span) == _span_id(telemetered.span("invoke_agent debug"))


def test_decision_span_links_to_the_waiting_span_and_is_current(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = hub.spans.request("s1")
    run = hub.spans.agent("coder", conversation_id="s1", parent=request.context)
    tool = hub.spans.tool("write_file", "c1", agent="coder", parent=run.context, session_id="s1")
    with hub.spans.decision("c1", "write_file", waiting=tool.span_ref) as span:
        assert trace.get_current_span() is span
        hub.emit(
            telemetry.HITLDecisionMade(tool="write_file", call_id="c1", decision="APPROVE"),
            span=tool.span,
            origin=tool.span_context,
        )
    tool.stop("completed")
    run.stop()
    request.stop(n.OUTCOME_COMPLETED)

    decision = telemetered.span(n.SPAN_HITL_DECISION)
    assert [(link.context.trace_id, link.context.span_id) for link in decision.links] == [
        (tool.span_context.trace_id, tool.span_context.span_id)
    ]
    assert (decision.attributes or {})[n.GEN_AI_TOOL_CALL_ID] == "c1"
    waiting = telemetered.span("execute_tool write_file")
    assert n.EVENT_HITL_DECISION_MADE in [e.name for e in waiting.events]


def test_decision_span_has_no_link_when_the_waiting_context_is_invalid(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    with hub.spans.decision("c1", "write_file", waiting=trace.INVALID_SPAN_CONTEXT):
        pass
    assert telemetered.span(n.SPAN_HITL_DECISION).links == ()
