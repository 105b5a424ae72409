"""One count per application (telemetry.counts): get_metrics() and the exported OTel counters
read the same numbers, and an application that closes keeps its share of the totals."""

from __future__ import annotations

import telemetry
from telemetry import names as n
from telemetry.counts import EventCounts
from tests.support.fixtures import hub_on
from tests.support.otel import Telemetered


def _switch() -> telemetry.AgentSwitched:
    return telemetry.AgentSwitched(from_agent="orchestrator", to_agent="coder", trigger="user")


async def test_get_metrics_and_the_exported_counter_read_one_count(
    telemetered: Telemetered,
) -> None:
    async with hub_on(None) as hub:
        for _ in range(3):
            hub.emit(_switch())
        assert hub.metrics.get_metrics()["agent_switches"] == {"orchestrator_to_coder": 3}
        assert telemetered.metric(n.METRIC_AGENT_SWITCHES, {n.SWITCH_TRIGGER: "user"}) == 3


async def test_a_closed_application_keeps_its_counts_in_the_process_totals(
    telemetered: Telemetered,
) -> None:
    first = telemetry.Telemetry(settings=telemetry.TelemetrySettings())
    first.emit(_switch())
    first.emit(telemetry.SessionCreated(session_id="s1"))
    await first.aclose()
    async with hub_on(None) as second:
        second.emit(_switch())
        assert second.metrics.get_agent_switch_count() == 1  # its own count only
        assert telemetered.metric(n.METRIC_AGENT_SWITCHES, {n.SWITCH_TRIGGER: "user"}) == 2
    assert telemetered.metric(n.METRIC_AGENT_SWITCHES, {n.SWITCH_TRIGGER: "user"}) == 2


def test_merging_adds_every_tally() -> None:
    source, total = EventCounts(), EventCounts()
    for event in (
        _switch(),
        telemetry.AgentProcessingCompleted(agent="coder", duration_s=0.5, outcome="completed"),
        telemetry.ToolExecutionCompleted(tool="write_file", call_id="c", outcome="failed"),
        telemetry.HITLDecisionMade(
            tool="write_file", call_id="c", decision="REJECT", wait_s=2, outcome="timeout"
        ),
        telemetry.AgentErrorOccurred(agent="coder", error_type="ValueError", message="m"),
        telemetry.SessionDeleted(session_id="s1"),
        telemetry.FeedbackGiven(feedback_id="f", evaluation="e", score=0.25, agent="coder"),
    ):
        source.record(event)
    source.merge_into(total)
    source.merge_into(total)
    assert total.switches[("orchestrator", "coder", "user")] == 2
    assert (total.agent_runs["coder"].count, total.agent_runs["coder"].total_s) == (2, 1.0)
    assert total.tool_calls[("write_file", "failed")] == 2
    assert total.decisions[("write_file", "REJECT")] == 2
    assert (total.timeouts, total.wait_total_s) == (2, 4.0)
    assert total.errors[("coder", "ValueError")] == 2
    assert total.sessions == -2
    assert (total.ratings["coder"], total.score_total["coder"]) == (2, 0.5)
