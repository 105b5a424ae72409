"""RequestTrace (docs/architecture.md): one idempotent finaliser ends every span exactly once,
innermost first, on every path."""

from __future__ import annotations

from typing import cast

import pytest
from opentelemetry import metrics, trace
from opentelemetry.trace import StatusCode

import telemetry
from telemetry import names as n
from telemetry.audit import AuditLog
from telemetry.emit import EventEmitter
from telemetry.metrics import MetricsRecorder
from telemetry.operation_metrics import OperationMetrics
from telemetry.spans import SpanFactory
from telemetry.subscribers import SubscriberFanOut
from tests.support.otel import Telemetered


def _open_everything(
    request: telemetry.RequestTrace,
) -> tuple[telemetry.AgentRun, telemetry.ToolRun, telemetry.AgentRun, telemetry.ToolRun]:
    orchestrator = request.agent("orchestrator")
    orchestrator.stop(n.OUTCOME_HANDED_OFF)
    coder = request.agent("coder")
    waiting = request.tool("write_file", "c1", run=coder)
    return orchestrator, waiting, coder, request.handoff(coder, "debug", "c2")


def _end_order(telemetered: Telemetered) -> list[str]:
    return [span.name for span in telemetered.spans()]  # export order = end order


@pytest.mark.parametrize(
    "outcome", [n.OUTCOME_COMPLETED, n.OUTCOME_DISCONNECTED, n.OUTCOME_SHUTDOWN]
)
def test_finish_ends_every_open_span_once_innermost_first(
    hub: telemetry.Telemetry, telemetered: Telemetered, outcome: str
) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    _open_everything(request)
    request.finish(outcome)
    request.finish(outcome)
    request.finish(n.OUTCOME_ERROR, RuntimeError("late"))

    assert _end_order(telemetered) == [
        "invoke_agent orchestrator",
        f"execute_tool {n.HANDOFF_TOOL_PREFIX}debug",
        "execute_tool write_file",
        "invoke_agent coder",
        n.SPAN_AGENT_REQUEST,
    ]
    telemetered.ledger.assert_each_ended_once()
    assert request.finished
    for span in telemetered.spans():
        assert span.status.status_code is StatusCode.UNSET, span.name
    assert (telemetered.span("execute_tool write_file").attributes or {})[n.TOOL_OUTCOME] == outcome
    assert (telemetered.span("invoke_agent coder").attributes or {})[n.AGENT_OUTCOME] == outcome
    assert (telemetered.span("invoke_agent orchestrator").attributes or {})[
        n.AGENT_OUTCOME
    ] == n.OUTCOME_HANDED_OFF
    assert (telemetered.span(n.SPAN_AGENT_REQUEST).attributes or {})[n.REQUEST_OUTCOME] == outcome


def test_finish_with_an_error_fails_every_open_span_once(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    _open_everything(request)
    request.finish(n.OUTCOME_ERROR, ConnectionError("provider down"))
    request.finish(n.OUTCOME_ERROR, ConnectionError("provider down"))

    assert _end_order(telemetered)[-1] == n.SPAN_AGENT_REQUEST
    telemetered.ledger.assert_each_ended_once()
    for name in (
        "execute_tool write_file",
        f"execute_tool {n.HANDOFF_TOOL_PREFIX}debug",
        "invoke_agent coder",
        n.SPAN_AGENT_REQUEST,
    ):
        span = telemetered.span(name)
        assert span.status.status_code is StatusCode.ERROR, name
        assert (span.attributes or {})[n.ERROR_TYPE] == "ConnectionError", name
    orchestrator = telemetered.span("invoke_agent orchestrator")
    assert orchestrator.status.status_code is StatusCode.UNSET  # ended before the failure
    assert telemetered.metric(n.METRIC_ERRORS, {n.GEN_AI_AGENT_NAME: "coder"}) == 1
    assert hub.audit is not None
    (record,) = hub.audit.get_audit_log(event_type=n.EVENT_AGENT_ERROR)
    assert record["trace_id"] == request.correlation_id


def test_finish_skips_spans_already_ended(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    run = request.agent("coder")
    tool = request.tool("write_file", "c1", run=run)
    tool.stop(n.OUTCOME_REJECTED)
    request.finish(n.OUTCOME_DISCONNECTED)
    telemetered.ledger.assert_each_ended_once()
    assert (telemetered.span("execute_tool write_file").attributes or {})[
        n.TOOL_OUTCOME
    ] == n.OUTCOME_REJECTED
    assert (telemetered.span("invoke_agent coder").attributes or {})[
        n.AGENT_OUTCOME
    ] == n.OUTCOME_DISCONNECTED


def test_request_trace_builds_the_tree_under_the_callers_context(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    with trace.get_tracer("tests").start_as_current_span("server") as server:
        request = telemetry.RequestTrace(hub.spans, "s1", context=None)
    run = request.agent("coder")
    request.tool("read_file", "c1", run=run)
    request.finish(n.OUTCOME_COMPLETED)

    root = telemetered.span(n.SPAN_AGENT_REQUEST)
    agent = telemetered.span("invoke_agent coder")
    tool = telemetered.span("execute_tool read_file")
    assert root.parent is not None and root.parent.span_id == server.get_span_context().span_id
    assert agent.parent is not None and root.context is not None
    assert agent.parent.span_id == root.context.span_id
    assert tool.parent is not None and agent.context is not None
    assert tool.parent.span_id == agent.context.span_id
    assert request.correlation_id == trace.format_trace_id(server.get_span_context().trace_id)


def test_unsampled_request_still_finishes_and_counts(
    hub: telemetry.Telemetry, unsampled: Telemetered
) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    _open_everything(request)
    request.finish(n.OUTCOME_ERROR, RuntimeError("x"))
    assert request.finished
    assert unsampled.spans() == []
    assert unsampled.metric(n.METRIC_ERRORS) == 1
    assert unsampled.metric(n.METRIC_INVOKE_AGENT_DURATION) == 2


class CountingCommits:
    """An audit trail that only counts the writes its requests ask for."""

    def __init__(self) -> None:
        self.commits = 0

    def write(self, *args: object, **kwargs: object) -> None:
        pass

    def flush_soon(self) -> None:
        self.commits += 1


def test_finishing_a_request_commits_its_audit_records_once(telemetered: Telemetered) -> None:
    store = CountingCommits()
    meter = metrics.get_meter("tests")
    recorder = MetricsRecorder(meter)
    emitter = EventEmitter(
        telemetry.TelemetrySettings(), recorder, cast(AuditLog, store), SubscriberFanOut()
    )
    factory = SpanFactory(emitter, trace.get_tracer("tests"), OperationMetrics(meter))
    request = telemetry.RequestTrace(factory, "s1")
    request.agent("coder")
    assert store.commits == 0
    request.finish(n.OUTCOME_COMPLETED)
    request.finish(n.OUTCOME_COMPLETED)
    assert store.commits == 1
    recorder.close()


def test_a_chat_call_opened_through_the_request_is_ended_by_finish(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    """A stream cut short between two chunks (a disconnect) leaves its chat call open; the
    request's finaliser ends it, innermost first, with its metric point recorded once."""
    request = telemetry.RequestTrace(hub.spans, "s1")
    run = request.agent("coder")
    call = request.chat(run, "gpt-4o-mini", provider="openai", server_address="api.invalid")
    call.first_chunk()
    request.finish(n.OUTCOME_DISCONNECTED)
    request.finish(n.OUTCOME_DISCONNECTED)

    assert _end_order(telemetered) == [
        "chat gpt-4o-mini",
        "invoke_agent coder",
        n.SPAN_AGENT_REQUEST,
    ]
    telemetered.ledger.assert_each_ended_once()
    chat = telemetered.span("chat gpt-4o-mini")
    assert chat.status.status_code is StatusCode.UNSET
    assert chat.parent is not None
    assert chat.parent.span_id == run.span_context.span_id
    assert (chat.attributes or {})[n.SERVER_ADDRESS] == "api.invalid"
    assert telemetered.metric(n.METRIC_CLIENT_OPERATION_DURATION) == 1


def test_a_chat_call_fails_with_the_request(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    request.chat(request.agent("coder"), "gpt-4o-mini", provider="openai")
    request.finish(n.OUTCOME_ERROR, ConnectionError("provider down"))
    chat = telemetered.span("chat gpt-4o-mini")
    assert chat.status.status_code is StatusCode.ERROR
    assert (chat.attributes or {})[n.ERROR_TYPE] == "ConnectionError"
    assert (
        telemetered.metric(n.METRIC_CLIENT_OPERATION_DURATION, {n.ERROR_TYPE: "ConnectionError"})
        == 1
    )
    telemetered.ledger.assert_each_ended_once()


def test_a_chat_call_that_ended_on_its_own_is_left_alone(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    call = request.chat(request.agent("coder"), "gpt-4o-mini", provider="openai")
    call.usage(input_tokens=3, output_tokens=4)
    call.stop()
    request.finish(n.OUTCOME_ERROR, RuntimeError("later"))
    chat = telemetered.span("chat gpt-4o-mini")
    assert chat.status.status_code is StatusCode.UNSET
    assert (chat.attributes or {})[n.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert telemetered.metric(n.METRIC_CLIENT_TOKEN_USAGE) == 2
    telemetered.ledger.assert_each_ended_once()
