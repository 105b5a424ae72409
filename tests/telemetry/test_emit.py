"""One emit call, four sinks (docs/architecture.md): span event, metrics, audit (+ log record),
subscribers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanContext

import telemetry
from telemetry import names as n
from telemetry.audit import AuditLog
from telemetry.emit import EventEmitter
from telemetry.metrics import MetricsRecorder
from telemetry.subscribers import SubscriberFanOut
from tests.support.fixtures import hub_in
from tests.support.otel import Telemetered

TRACER = "tests.telemetry.emit"


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[telemetry.TelemetryEvent, telemetry.EventContext]] = []

    def on_event(self, event: telemetry.TelemetryEvent, context: telemetry.EventContext) -> None:
        self.seen.append((event, context))


class Broken:
    def on_event(self, event: telemetry.TelemetryEvent, context: telemetry.EventContext) -> None:
        raise RuntimeError("subscriber bug")


def _switch() -> telemetry.AgentSwitched:
    return telemetry.AgentSwitched(
        from_agent="orchestrator",
        to_agent="coder",
        trigger="orchestrator",
        reason="code",
        confidence=0.9,
        session_id="s1",
    )


def _trace_id(span: trace.Span) -> str:
    return trace.format_trace_id(span.get_span_context().trace_id)


def test_span_event_lands_on_the_given_span(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span("current"):
        target = tracer.start_span("target")
        hub.emit(telemetry.SessionCreated(session_id="s1"), span=target)
        target.end()
    assert [e.name for e in telemetered.span("target").events] == [n.EVENT_SESSION_CREATED]
    assert telemetered.span("target").events[0].attributes == {n.SESSION_ID: "s1"}
    assert telemetered.span("current").events == ()


def test_span_event_lands_on_the_current_span_by_default(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    with trace.get_tracer(TRACER).start_as_current_span("current"):
        hub.emit(telemetry.MessageAdded(session_id="s1", role="user", content="hi"))
    (event,) = telemetered.span("current").events
    assert event.name == n.EVENT_MESSAGE_ADDED
    assert event.attributes == {n.MESSAGE_ROLE: "user", n.MESSAGE_CONTENT_LENGTH: 2}


def test_span_start_and_end_events_are_not_span_events(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    with trace.get_tracer(TRACER).start_as_current_span("current"):
        hub.emit(telemetry.AgentProcessingStarted(agent="coder"))
        hub.emit(telemetry.ToolExecutionCompleted(tool="t", call_id="c", outcome="completed"))
    assert telemetered.span("current").events == ()


def test_emit_outside_any_span_still_counts_and_notifies(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    recorder = Recorder()
    hub.subscribe(recorder)
    hub.emit(_switch())
    assert telemetered.metric(n.METRIC_AGENT_SWITCHES) == 1
    assert len(recorder.seen) == 1
    # The audit trail does not depend on tracing: the record is written, with no trace.
    assert hub.audit is not None
    [record] = hub.audit.get_audit_log()
    assert record["event_type"] == n.AUDIT_AGENT_SWITCHED
    assert record["trace_id"] == "0" * 32


def test_agent_switch_metric_has_from_to_trigger(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    with trace.get_tracer(TRACER).start_as_current_span("s"):
        hub.emit(_switch())
        hub.emit(_switch())
    assert (
        telemetered.metric(
            n.METRIC_AGENT_SWITCHES,
            {n.SWITCH_FROM: "orchestrator", n.SWITCH_TO: "coder", n.SWITCH_TRIGGER: "orchestrator"},
        )
        == 2
    )


def test_tool_call_metric_counts_each_stage_by_tool_and_outcome(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    hub.emit(telemetry.ToolExecutionRequested(tool="write_file", call_id="c1", agent="coder"))
    hub.emit(telemetry.ToolApprovalRequired(tool="write_file", call_id="c1", reason="writes"))
    hub.emit(telemetry.ToolExecutionCompleted(tool="write_file", call_id="c1", outcome="rejected"))
    hub.emit(telemetry.ToolExecutionCompleted(tool="read_file", call_id="c2", outcome="failed"))

    def calls(tool: str, outcome: str) -> float:
        return telemetered.metric(
            n.METRIC_TOOL_CALLS, {n.GEN_AI_TOOL_NAME: tool, n.TOOL_OUTCOME: outcome}
        )

    assert calls("write_file", "requested") == 1
    assert calls("write_file", "requires_approval") == 1
    assert calls("write_file", "rejected") == 1
    assert calls("write_file", "completed") == 0
    assert calls("read_file", "failed") == 1


def test_hitl_decision_metrics_count_and_wait(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    hub.emit(telemetry.HITLDecisionMade(tool="write_file", call_id="c1", decision="EDIT", wait_s=2))
    hub.emit(telemetry.HITLDecisionMade(tool="write_file", call_id="c2", decision="REJECT"))
    attrs = {n.GEN_AI_TOOL_NAME: "write_file", n.HITL_DECISION: "EDIT"}
    assert telemetered.metric(n.METRIC_HITL_DECISIONS, attrs) == 1
    assert telemetered.metric(n.METRIC_HITL_DECISIONS) == 2
    assert telemetered.metric(n.METRIC_HITL_WAIT, attrs) == 1  # histogram: one point


def test_error_metrics_and_no_session_count_from_events(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    """Session events feed no instrument: sessions are counted from the store (a replica
    sees only its own events, and a restart would forget them)."""
    hub.emit(telemetry.AgentErrorOccurred(agent="coder", error_type="ValueError", message="x"))
    hub.emit(telemetry.SessionCreated(session_id="a"))
    hub.emit(telemetry.SessionCreated(session_id="b"))
    hub.emit(telemetry.SessionDeleted(session_id="a"))
    assert (
        telemetered.metric(
            n.METRIC_ERRORS, {n.GEN_AI_AGENT_NAME: "coder", n.ERROR_TYPE: "ValueError"}
        )
        == 1
    )
    assert telemetered.metric(n.METRIC_SESSIONS_ACTIVE) == 0  # nobody fed the gauge


def test_metric_attributes_never_carry_session_or_trace_ids(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    with trace.get_tracer(TRACER).start_as_current_span("s"):
        hub.emit(_switch())
        hub.emit(telemetry.SessionCreated(session_id="s1"))
        hub.emit(telemetry.HITLDecisionMade(tool="t", call_id="c", decision="APPROVE"))
    data = telemetered.metric_reader.get_metrics_data()
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    keys = set(point.attributes or {})
                    assert not keys & {
                        n.SESSION_ID,
                        n.GEN_AI_CONVERSATION_ID,
                        n.GEN_AI_TOOL_CALL_ID,
                    }


def test_audited_event_writes_a_record_with_the_spans_trace_id(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    with trace.get_tracer(TRACER).start_as_current_span("s") as span:
        hub.emit(_switch())
    assert hub.audit is not None
    (record,) = hub.audit.get_audit_log(session_id="s1")
    assert record["event_type"] == n.AUDIT_AGENT_SWITCHED
    assert record["otel_event_name"] == n.EVENT_AGENT_SWITCHED
    assert record["trace_id"] == _trace_id(span)
    assert record["span_id"] == trace.format_span_id(span.get_span_context().span_id)
    assert record["attributes"][n.SWITCH_TO] == "coder"


async def test_audited_event_emits_a_log_record_in_the_same_trace(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    with trace.get_tracer(TRACER).start_as_current_span("s") as span:
        hub.emit(_switch())
    assert hub.audit is not None
    (record,) = hub.audit.get_audit_log()
    await hub.flush()  # the log record follows the write, from the audit flusher
    (log,) = telemetered.logs()
    assert log.log_record.trace_id == span.get_span_context().trace_id
    attributes = log.log_record.attributes or {}
    assert attributes[n.AUDIT_EVENT_TYPE] == n.AUDIT_AGENT_SWITCHED
    assert log.log_record.event_name == n.EVENT_AGENT_SWITCHED
    assert attributes[n.AUDIT_RECORD_ID] == record["record_id"]


def test_non_audited_event_writes_no_record_and_no_log(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    with trace.get_tracer(TRACER).start_as_current_span("s"):
        hub.emit(telemetry.SessionCreated(session_id="s1"))
        hub.emit(telemetry.ToolExecutionRequested(tool="t", call_id="c", agent="a"))
    assert hub.audit is not None
    assert hub.audit.get_audit_log() == []
    assert telemetered.logs() == []


async def test_origin_decides_the_audit_trace_while_the_event_lands_on_span(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    tracer = trace.get_tracer(TRACER)
    waiting = tracer.start_span("waiting")
    with tracer.start_as_current_span("decision") as deciding:
        hub.emit(
            telemetry.HITLDecisionMade(tool="t", call_id="c", decision="APPROVE", session_id="s1"),
            span=deciding,
            origin=waiting.get_span_context(),
        )
    waiting.end()
    assert _trace_id(waiting) != _trace_id(deciding)
    assert [e.name for e in telemetered.span("decision").events] == [n.EVENT_HITL_DECISION_MADE]
    assert hub.audit is not None
    (record,) = hub.audit.get_audit_log()
    assert record["trace_id"] == _trace_id(waiting)
    await hub.flush()
    (log,) = telemetered.logs()
    assert log.log_record.trace_id == waiting.get_span_context().trace_id


def test_subscribers_are_notified_with_trace_context(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    recorder = Recorder()
    hub.subscribe(recorder)
    event = telemetry.SessionCreated(session_id="s1")
    with trace.get_tracer(TRACER).start_as_current_span("s") as span:
        hub.emit(event)
    ((seen, context),) = recorder.seen
    assert seen is event
    assert context.trace_id == _trace_id(span)
    assert context.span_id == trace.format_span_id(span.get_span_context().span_id)


async def test_a_failing_subscriber_does_not_stop_the_others(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    before, after = Recorder(), Recorder()
    async with hub_in(
        tmp_path,
        settings=telemetry.TelemetrySettings(),
        subscribers=[before, Broken(), after],
    ) as hub:
        with trace.get_tracer(TRACER).start_as_current_span("s"):
            hub.emit(_switch())  # must not raise
        assert len(before.seen) == 1
        assert len(after.seen) == 1
        assert hub.metrics.get_agent_switch_count() == 1
        assert hub.audit is not None
        assert len(hub.audit.get_audit_log()) == 1


def test_metrics_and_audit_are_exact_when_the_trace_is_not_sampled(
    hub: telemetry.Telemetry, unsampled: Telemetered
) -> None:
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span("dropped") as span:
        assert not span.is_recording()
        for _ in range(3):
            hub.emit(_switch())
        hub.emit(telemetry.ToolExecutionRequested(tool="write_file", call_id="c", agent="coder"))
        hub.emit(telemetry.HITLDecisionMade(tool="write_file", call_id="c", decision="REJECT"))
        hub.emit(telemetry.AgentErrorOccurred(agent="coder", error_type="E", message="m"))
        hub.emit(telemetry.SessionCreated(session_id="s1"))
    assert unsampled.spans() == []
    assert unsampled.metric(n.METRIC_AGENT_SWITCHES) == 3
    assert (
        unsampled.metric(
            n.METRIC_TOOL_CALLS, {n.GEN_AI_TOOL_NAME: "write_file", n.TOOL_OUTCOME: "requested"}
        )
        == 1
    )
    assert unsampled.metric(n.METRIC_HITL_DECISIONS, {n.HITL_DECISION: "REJECT"}) == 1
    assert unsampled.metric(n.METRIC_HITL_WAIT) == 1
    assert unsampled.metric(n.METRIC_ERRORS) == 1
    assert hub.audit is not None
    records = hub.audit.get_audit_log()
    assert len(records) == 5  # 3 switches, 1 decision, 1 error
    trace_id = _trace_id(span)
    assert trace_id != "0" * 32
    assert {record["trace_id"] for record in records} == {trace_id}
    assert hub.metrics.get_agent_switch_count() == 3


def test_agent_and_tool_duration_metrics_are_recorded_when_unsampled(
    hub: telemetry.Telemetry, unsampled: Telemetered
) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    run = request.agent("coder")
    tool = request.tool("write_file", "c1", run=run)
    tool.stop("completed")
    run.stop()
    request.finish(n.OUTCOME_COMPLETED)
    assert unsampled.spans() == []
    assert unsampled.metric(n.METRIC_INVOKE_AGENT_DURATION, {n.GEN_AI_AGENT_NAME: "coder"}) == 1
    assert unsampled.metric(n.METRIC_EXECUTE_TOOL_DURATION, {n.GEN_AI_TOOL_NAME: "write_file"}) == 1
    assert hub.metrics.get_metrics()["agent_processing"]["coder"]["count"] == 1


class FakeAuditStore:
    """Stands in for AuditLog: remembers what it was asked to queue (``write``) and what
    its callers stored with their change (``committed``)."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, dict[str, Any], bool]] = []
        self.real = AuditLog.build

    def write(
        self,
        event: telemetry.TelemetryEvent,
        attributes: telemetry.events.Attributes,
        context: SpanContext,
        *,
        summary: str | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        assert summary == event.summary()  # formatted once, by the emit call
        self.writes.append((event.name, dict(attributes), False))

    def build(
        self,
        event: telemetry.TelemetryEvent,
        attributes: telemetry.events.Attributes,
        context: SpanContext,
        *,
        summary: str | None = None,
        details: dict[str, object] | None = None,
    ) -> telemetry.AuditRecord:
        return telemetry.AuditRecord.new(event, attributes, context, summary, details)

    def committed(self, records: list[telemetry.AuditRecord]) -> None:
        self.writes.extend((r.otel_name, dict(r.attributes), True) for r in records)


def _emitter_over(store: FakeAuditStore) -> EventEmitter:
    return EventEmitter(
        telemetry.TelemetrySettings(),
        MetricsRecorder(metrics.get_meter(TRACER)),
        cast(AuditLog, store),
        SubscriberFanOut(),
    )


def test_a_record_stored_with_its_change_is_shipped_not_written_again(
    telemetered: Telemetered,
) -> None:
    store = FakeAuditStore()
    emitter = _emitter_over(store)
    with trace.get_tracer(TRACER).start_as_current_span("s"):
        emitter.emit(_switch())
        decision = telemetry.HITLDecisionMade(tool="t", call_id="c", decision="APPROVE")
        record = emitter.audit_record(decision)
        assert record is not None and record.event_type == n.AUDIT_HITL_DECISION_MADE
        emitter.emit(decision, audit_record=record)
        emitter.emit(telemetry.ToolApprovalRequired(tool="t", call_id="c", reason="writes"))
        deleted = telemetry.SessionDeleted(session_id="s1")
        emitter.emit(deleted, audit_record=emitter.audit_record(deleted))
        emitter.emit(telemetry.SessionCreated(session_id="s2"))  # not audited: no write
        assert emitter.audit_record(telemetry.SessionCreated(session_id="s3")) is None
    assert [(name, durable) for name, _, durable in store.writes] == [
        (n.EVENT_AGENT_SWITCHED, False),
        (n.EVENT_HITL_DECISION_MADE, True),
        (n.EVENT_TOOL_APPROVAL_REQUIRED, False),
        (n.EVENT_SESSION_DELETED, True),
    ]


def test_span_event_and_audit_record_carry_the_same_attributes(
    telemetered: Telemetered,
) -> None:
    store = FakeAuditStore()
    emitter = _emitter_over(store)
    with trace.get_tracer(TRACER).start_as_current_span("s"):
        emitter.emit(_switch())
    ((_, audited, _),) = store.writes
    (span_event,) = telemetered.span("s").events
    assert audited == dict(span_event.attributes or {})
    assert audited[n.SWITCH_TO] == "coder"
