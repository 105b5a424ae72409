"""The seed's query API (docs/architecture.md): MetricsCollector over every emitted event."""

from __future__ import annotations

import pytest

import telemetry
from telemetry import names as n
from telemetry.subscribers import SubscriberFanOut
from tests.support.fixtures import hub_on

CTX = telemetry.EventContext(trace_id="0" * 31 + "1", span_id="0" * 15 + "1", timestamp=0.0)


def _feed(collector: telemetry.MetricsCollector, *events: telemetry.TelemetryEvent) -> None:
    for event in events:
        collector.on_event(event, CTX)


def _switch(src: str, dst: str, trigger: telemetry.SwitchTrigger) -> telemetry.AgentSwitched:
    return telemetry.AgentSwitched(from_agent=src, to_agent=dst, trigger=trigger)


def _done(agent: str, seconds: float, outcome: str) -> telemetry.AgentProcessingCompleted:
    return telemetry.AgentProcessingCompleted(agent=agent, duration_s=seconds, outcome=outcome)


def _tool_end(tool: str, outcome: str) -> telemetry.ToolExecutionCompleted:
    return telemetry.ToolExecutionCompleted(tool=tool, call_id="c", outcome=outcome)  # type: ignore[arg-type]


def test_empty_metrics_have_the_seeds_shape() -> None:
    assert telemetry.MetricsCollector().get_metrics() == {
        "agent_switches": {},
        "agent_processing": {},
        "tool_executions": {},
        "hitl_decisions": {},
        "errors": {},
        "agent_switch_triggers": {},
        "agent_avg_duration_ms": {},
        "hitl_summary": {"total": 0, "timeouts": 0, "avg_wait_ms": 0.0},
        "context_trims": {},
        "feedback": {},
    }


def _every_kind() -> list[telemetry.TelemetryEvent]:
    return [
        _switch("orchestrator", "coder", "orchestrator"),
        _switch("orchestrator", "coder", "orchestrator"),
        _switch("debug", "coder", "agent"),
        _done("coder", 0.1, n.OUTCOME_COMPLETED),
        _done("coder", 0.3, n.OUTCOME_ERROR),
        telemetry.ToolExecutionRequested(tool="write_file", call_id="c", agent="coder"),
        telemetry.ToolApprovalRequired(tool="write_file", call_id="c", reason="writes"),
        _tool_end("write_file", "completed"),
        telemetry.ToolExecutionRequested(tool="write_file", call_id="d", agent="coder"),
        _tool_end("write_file", "rejected"),
        _tool_end("read_file", "failed"),
        telemetry.HITLDecisionMade(tool="write_file", call_id="c", decision="APPROVE", wait_s=1),
        telemetry.HITLDecisionMade(tool="write_file", call_id="d", decision="EDIT", wait_s=2),
        telemetry.HITLDecisionMade(
            tool="write_file", call_id="e", decision="REJECT", wait_s=3, outcome="timeout"
        ),
        telemetry.AgentErrorOccurred(agent="coder", error_type="ValueError", message="m"),
        telemetry.AgentErrorOccurred(agent="debug", error_type="ValueError", message="m"),
        telemetry.SessionCreated(session_id="s"),  # no section of its own
        _rated("coder", 1.0),
        _rated("coder", 0.0),
        _rated("coder", 1.0),
        _rated("ask", 0.5),
        _rated(None, 0.2),
    ]


def _rated(agent: str | None, score: float) -> telemetry.FeedbackGiven:
    return telemetry.FeedbackGiven(
        feedback_id="f", evaluation="user_feedback", score=score, agent=agent
    )


def test_get_metrics_aggregates_every_section_in_the_seeds_shapes() -> None:
    collector = telemetry.MetricsCollector()
    _feed(collector, *_every_kind())
    metrics = collector.get_metrics()
    assert list(metrics)[:5] == [
        "agent_switches",
        "agent_processing",
        "tool_executions",
        "hitl_decisions",
        "errors",
    ]
    assert metrics["agent_switches"] == {"orchestrator_to_coder": 2, "debug_to_coder": 1}
    assert metrics["agent_processing"] == {
        "coder": {
            "count": 2,
            "total_duration_ms": 400.0,
            "success_count": 1,
            "failure_count": 1,
        }
    }
    assert metrics["tool_executions"] == {
        "write_file": {
            "requested": 2,
            "completed": 1,
            "failed": 0,
            "rejected": 1,
            "requires_approval": 1,
        },
        "read_file": {
            "requested": 0,
            "completed": 0,
            "failed": 1,
            "rejected": 0,
            "requires_approval": 0,
        },
    }
    # Per tool; a timeout is a REJECT (the timeouts are counted under hitl_summary).
    assert metrics["hitl_decisions"] == {"write_file": {"APPROVE": 1, "EDIT": 1, "REJECT": 1}}
    assert metrics["errors"] == {"coder": {"ValueError": 1}, "debug": {"ValueError": 1}}
    # What the project adds, under keys of its own.
    assert metrics["agent_switch_triggers"] == {"orchestrator": 2, "agent": 1}
    assert metrics["agent_avg_duration_ms"] == {"coder": 200.0}
    assert metrics["hitl_summary"] == {"total": 3, "timeouts": 1, "avg_wait_ms": 2000.0}
    assert metrics["feedback"] == {
        "coder": {"count": 3, "mean_score": 0.6667},
        "ask": {"count": 1, "mean_score": 0.5},
        "unknown": {"count": 1, "mean_score": 0.2},
    }


def test_agent_avg_duration_in_milliseconds() -> None:
    collector = telemetry.MetricsCollector()
    assert collector.get_agent_avg_duration("coder") == 0.0
    _feed(collector, _done("coder", 0.1, "completed"), _done("coder", 0.2, "rejected"))
    assert collector.get_agent_avg_duration("coder") == pytest.approx(150.0)
    assert collector.get_agent_avg_duration("ask") == 0.0


def test_tool_success_rate_ignores_rejections() -> None:
    collector = telemetry.MetricsCollector()
    assert collector.get_tool_success_rate("write_file") == 0.0
    _feed(collector, _tool_end("write_file", "rejected"))
    assert collector.get_tool_success_rate("write_file") == 0.0  # a REJECT counts neither way
    _feed(
        collector,
        _tool_end("write_file", "completed"),
        _tool_end("write_file", "completed"),
        _tool_end("write_file", "completed"),
        _tool_end("write_file", "failed"),
        _tool_end("write_file", "rejected"),
    )
    assert collector.get_tool_success_rate("write_file") == pytest.approx(0.75)


def test_switch_count_filters_by_route() -> None:
    collector = telemetry.MetricsCollector()
    _feed(
        collector,
        _switch("orchestrator", "coder", "orchestrator"),
        _switch("orchestrator", "debug", "orchestrator"),
        _switch("debug", "coder", "agent"),
        _switch("coder", "ask", "user"),
    )
    assert collector.get_agent_switch_count() == 4
    assert collector.get_agent_switch_count(from_agent="orchestrator") == 2
    assert collector.get_agent_switch_count(to_agent="coder") == 2
    assert collector.get_agent_switch_count(from_agent="debug", to_agent="coder") == 1
    assert collector.get_agent_switch_count(from_agent="coder", to_agent="debug") == 0


async def test_hub_metrics_follow_emitted_events(telemetered: object) -> None:
    async with hub_on(None) as hub:
        hub.emit(_switch("orchestrator", "coder", "orchestrator"))
        hub.emit(_tool_end("write_file", "completed"))
        assert hub.metrics.get_agent_switch_count(to_agent="coder") == 1
        assert hub.metrics.get_tool_success_rate("write_file") == 1.0
        assert hub.audit is None  # no outbox: no audit trail


def test_the_collector_declares_every_event_it_counts() -> None:
    """Through a fan-out it only sees its ``event_types``: nothing it counts may be missing."""
    direct, routed = telemetry.MetricsCollector(), telemetry.MetricsCollector()
    fan_out = SubscriberFanOut([routed])
    for event in _every_kind():
        direct.on_event(event, CTX)
        fan_out.notify(event, CTX)
    assert routed.get_metrics() == direct.get_metrics()
