"""SpanRef: a span's identity as three plain values, stored with a pending approval and handed
back to the layer (the decision's link, ``emit(origin=…)``, a resumed request's links, audit
records), so the service never builds span contexts or formats ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags

import telemetry
from agent_runtime.store import SQLiteStore
from telemetry import names as n
from telemetry.audit import AuditLog
from tests.support.otel import Telemetered

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"


def test_of_a_run_gives_its_ids_as_stored_values(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    tool = request.tool("write_file", "c1", run=request.agent("coder"))
    ref = telemetry.SpanRef.of(tool)
    request.finish(n.OUTCOME_COMPLETED)
    exported = telemetered.span("execute_tool write_file").context
    assert exported is not None
    assert ref == telemetry.SpanRef(
        trace.format_trace_id(exported.trace_id),
        trace.format_span_id(exported.span_id),
        int(exported.trace_flags),
    )
    assert ref.correlation_id == request.correlation_id
    assert ref.trace_flags & int(TraceFlags.SAMPLED) and ref.is_valid
    # the same through every kind of thing that has a span
    assert telemetry.SpanRef.of(tool.span) == telemetry.SpanRef.of(tool.span_context) == ref
    assert telemetry.SpanRef.of(request).span_id == telemetry.SpanRef.of(request.request).span_id


def test_it_round_trips_through_three_plain_values() -> None:
    ref = telemetry.SpanRef(TRACE_ID, SPAN_ID, 1)
    stored = (ref.trace_id, ref.span_id, ref.trace_flags)
    assert telemetry.SpanRef(*stored) == ref
    context = ref.context
    assert context == SpanContext(
        int(TRACE_ID, 16), int(SPAN_ID, 16), is_remote=True, trace_flags=TraceFlags(1)
    )
    assert telemetry.SpanRef.of(context) == ref


@pytest.mark.parametrize(
    ("trace_id", "span_id", "flags"),
    [
        ("abc", SPAN_ID, 1),
        (TRACE_ID.upper(), SPAN_ID, 1),
        (TRACE_ID, "xyz" * 5 + "z", 1),
        (TRACE_ID, SPAN_ID, 256),
    ],
)
def test_malformed_values_are_refused(trace_id: str, span_id: str, flags: int) -> None:
    with pytest.raises(ValueError):
        telemetry.SpanRef(trace_id, span_id, flags)


def test_the_decision_links_to_the_stored_span_and_skips_a_zero_one(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    ref = telemetry.SpanRef(TRACE_ID, SPAN_ID, 1)
    with hub.spans.decision("c1", "write_file", waiting=ref):
        pass
    (decision,) = telemetered.spans()
    assert [link.context for link in decision.links] == [ref.context]
    telemetered.reset()
    nothing = telemetry.SpanRef("0" * 32, "0" * 16)  # telemetry was off when it waited
    assert not nothing.is_valid
    with hub.spans.decision("c1", "write_file", waiting=nothing):
        pass
    assert telemetered.span(n.SPAN_HITL_DECISION).links == ()


def test_a_resumed_request_links_to_the_span_that_waited(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    waiting = telemetry.RequestTrace(hub.spans, "s1")
    tool = waiting.tool("write_file", "c1", run=waiting.agent("coder"))
    ref = telemetry.SpanRef.of(tool)
    waiting.finish(n.OUTCOME_DISCONNECTED)
    telemetered.reset()

    resumed = telemetry.RequestTrace(hub.spans, "s1", links=[ref])
    resumed.agent("coder").stop()
    resumed.finish(n.OUTCOME_COMPLETED)
    request = telemetered.span(n.SPAN_AGENT_REQUEST)
    assert [link.context.span_id for link in request.links] == [tool.span_context.span_id]
    assert resumed.correlation_id != ref.correlation_id  # a trace of its own, linked
    telemetered.ledger.assert_each_ended_once()


def test_emit_origin_puts_the_audit_record_in_the_stored_trace(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    ref = telemetry.SpanRef(TRACE_ID, SPAN_ID, 1)
    deciding = telemetry.RequestTrace(hub.spans, "s1")
    hub.emit(
        telemetry.HITLDecisionMade(
            tool="write_file", call_id="c1", decision="APPROVE", session_id="s1"
        ),
        span=deciding.span,
        origin=ref,
    )
    deciding.finish(n.OUTCOME_COMPLETED)
    assert hub.audit is not None
    (record,) = hub.audit.get_audit_log()
    assert (record["trace_id"], record["span_id"]) == (TRACE_ID, SPAN_ID)
    assert hub.timeline(TRACE_ID) is not None
    assert [e.name for e in telemetered.span(n.SPAN_AGENT_REQUEST).events] == [
        n.EVENT_HITL_DECISION_MADE
    ]


async def test_audit_records_accept_and_give_back_a_span_ref(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    ref = telemetry.SpanRef(TRACE_ID, SPAN_ID, 1)
    async with SQLiteStore(tmp_path / "store.db") as store:
        log = AuditLog(store)
        try:
            event = telemetry.SessionDeleted(session_id="s1")
            record = log.write(event, event.attributes(telemetry.TelemetrySettings()), ref)
            assert (record.trace_id, record.span_id) == (TRACE_ID, SPAN_ID)
            assert record.span_ref == ref
            await log.flush()
        finally:
            await log.aclose()
    (shipped,) = telemetered.logs()
    assert shipped.log_record.trace_id == int(TRACE_ID, 16)
    assert shipped.log_record.span_id == int(SPAN_ID, 16)
