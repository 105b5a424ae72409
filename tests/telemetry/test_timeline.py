"""The seed's timeline of one request (T+ms, event, details), kept per trace."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import _logs, metrics, trace

import telemetry
from telemetry import names as n
from telemetry.subscribers import EventContext
from telemetry.timeline import TimelineEntry, TimelineRecorder


def test_timeline_tells_one_requests_story(hub: telemetry.Telemetry) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    orchestrator = request.agent("orchestrator")
    hub.emit(
        telemetry.AgentSwitched(
            from_agent="orchestrator", to_agent="coder", trigger="orchestrator", confidence=0.9
        ),
        span=orchestrator.span,
    )
    orchestrator.stop(n.OUTCOME_HANDED_OFF)
    coder = request.agent("coder")
    tool = request.tool("write_file", "c1", run=coder)
    hub.emit(
        telemetry.HITLDecisionMade(tool="write_file", call_id="c1", decision="APPROVE"),
        span=tool.span,
    )
    tool.stop("completed")
    request.finish(n.OUTCOME_COMPLETED)

    entries = hub.timeline(request.correlation_id)
    assert entries is not None
    assert [entry.event for entry in entries] == [
        n.EVENT_AGENT_STARTED,
        n.EVENT_AGENT_SWITCHED,
        n.EVENT_AGENT_COMPLETED,
        n.EVENT_AGENT_STARTED,
        n.EVENT_HITL_DECISION_MADE,
        "tool.execution_completed",
        n.EVENT_AGENT_COMPLETED,
    ]
    assert entries[0].offset_ms == 0.0
    offsets = [entry.offset_ms for entry in entries]
    assert offsets == sorted(offsets)
    assert "orchestrator → coder" in entries[1].details
    assert "APPROVE" in entries[4].details
    assert hub.timeline(request.correlation_id.upper()) == entries


async def test_events_outside_any_trace_make_no_timeline(tmp_path: Path) -> None:
    """With tracing off every request's trace id is all zeros: one timeline under it would
    mix every request's story, so none is kept."""
    noop = telemetry.Providers(
        trace.NoOpTracerProvider(), metrics.NoOpMeterProvider(), _logs.NoOpLoggerProvider(), False
    )
    hub = telemetry.Telemetry(audit=None, providers=noop)
    request = telemetry.RequestTrace(hub.spans, "s1")
    hub.emit(
        telemetry.AgentSwitched(from_agent="orchestrator", to_agent="coder", trigger="user"),
        span=request.agent("orchestrator").span,
    )
    request.finish(n.OUTCOME_COMPLETED)
    assert request.correlation_id == "0" * 32
    assert hub.timeline("0" * 32) is None
    assert hub.metrics.get_agent_switch_count() == 1  # the event itself was recorded
    await hub.aclose()


def test_unknown_trace_has_no_timeline(hub: telemetry.Telemetry) -> None:
    assert hub.timeline("f" * 32) is None


@pytest.mark.parametrize("trace_id", ["", "abc", "g" * 32, " " + "0" * 31, "0x" + "0" * 30])
def test_malformed_trace_id_has_no_timeline(trace_id: str) -> None:
    recorder = TimelineRecorder()
    event = telemetry.SessionUpdated(session_id="s")
    recorder.on_event(event, EventContext("0" * 32, "0" * 16, 1.0))
    assert recorder.timeline("0" * 32) is not None
    assert recorder.timeline(trace_id) is None


def test_details_are_the_events_summary() -> None:
    recorder = TimelineRecorder()
    event = telemetry.ToolExecutionRequested(tool="write_file", call_id="c1", agent="coder")
    recorder.on_event(event, EventContext("1" * 32, "0" * 16, 5.0))
    assert recorder.timeline("1" * 32) == [
        TimelineEntry(0.0, n.EVENT_TOOL_EXECUTION_REQUESTED, event.summary())
    ]


def test_a_decision_joins_the_waiting_requests_timeline(hub: telemetry.Telemetry) -> None:
    waiting = telemetry.RequestTrace(hub.spans, "s1")
    tool = waiting.tool("write_file", "c1", run=waiting.agent("coder"))
    waiting.finish(n.OUTCOME_DISCONNECTED)
    deciding = hub.spans.request("s1")
    hub.emit(
        telemetry.HITLDecisionMade(tool="write_file", call_id="c1", decision="REJECT"),
        span=deciding.span,
        origin=tool.span_context,
    )
    deciding.stop(n.OUTCOME_COMPLETED)
    entries = hub.timeline(waiting.correlation_id)
    assert entries is not None
    assert entries[-1].event == n.EVENT_HITL_DECISION_MADE
    assert hub.timeline(deciding.correlation_id) is None


def test_recorder_is_bounded_in_traces_and_entries() -> None:
    recorder = TimelineRecorder(max_traces=2, max_entries=3)
    event = telemetry.SessionUpdated(session_id="s")
    for trace_number in range(3):
        for offset in range(5):
            recorder.on_event(event, EventContext(f"{trace_number:032x}", "0" * 16, offset))
    assert recorder.timeline(f"{0:032x}") is None  # evicted, oldest first
    entries = recorder.timeline(f"{2:032x}")
    assert entries is not None
    assert [entry.offset_ms for entry in entries] == [0.0, 1000.0, 2000.0]
