"""The service end to end through the real Collector into Jaeger, Prometheus and the audit file.

The service runs as a process (`agent-runtime serve`) exporting OTLP/gRPC to the Collector;
these tests speak only its HTTP contract (the README's table) and then read the backends' own
APIs: Jaeger's /api/traces/{id}, Prometheus' /api/v1/query, the Collector's audit file.
Everything waits by polling with a deadline. The outage tests stop Jaeger and kill the
Collector, then bring them back on the same ports and state, for the tests that follow.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time

import httpx
import pytest
from e2e_support import (
    ASK,
    CREATE,
    DASHBOARD,
    FAIL,
    FIX,
    METRIC_DEADLINE_S,
    TRACE_DEADLINE_S,
    Service,
    TelemetryStack,
    audit_records,
    decision_is_linked,
    hex_id,
    new_session,
    prom_exemplars,
    run_flow,
    span_events,
    wait_for_audit_file,
    wait_for_series,
    wait_for_trace,
    wait_until,
)

pytestmark = pytest.mark.e2e

# --- the tests -------------------------------------------------------------------------


async def test_each_trace_reaches_jaeger_with_its_events_and_the_decision_link(
    service: Service, telemetry_stack: TelemetryStack
) -> None:
    session = new_session()
    create = await run_flow(service.base_url, CREATE, session_id=session)
    fix = await run_flow(service.base_url, FIX, session_id=session)
    for flow in (create, fix):
        flow.assert_ok()
        assert len(flow.correlation_id) == 32 and int(flow.correlation_id, 16) >= 0
        assert flow.of("approval_required"), flow.names()
        assert flow.of("agent_switched"), flow.names()

    wanted_events = [
        "agent.switched",
        "tool.execution_requested",
        "hitl.approval_requested",
        "hitl.decision_made",
    ]
    for flow, agents in ((create, ["coder"]), (fix, ["debug", "coder"])):
        trace = wait_for_trace(
            telemetry_stack,
            flow.correlation_id,
            span_names=[
                "POST /agent/message/stream",
                "agent.request",
                *(f"invoke_agent {agent}" for agent in agents),
                "execute_tool write_file",
            ],
            events=wanted_events,
        )
        assert {hex_id(span["traceID"]) for span in trace["spans"]} == {flow.correlation_id}
        waiting = [s for s in trace["spans"] if s["operationName"] == "execute_tool write_file"]
        # The decision event lands on the span that waited for it.
        assert any(
            {"hitl.approval_requested", "hitl.decision_made"} <= set(span_events(s))
            for s in waiting
        ), [span_events(s) for s in waiting]

        # The decision request is its own trace, linked to the waiting execute_tool span.
        waiting_ids = {hex_id(s["spanID"]) for s in waiting}
        for decision in flow.decisions:
            decision_trace_id = decision.headers.get("x-correlation-id", "")
            assert len(decision_trace_id) == 32, dict(decision.headers)

            wait_until(
                functools.partial(
                    decision_is_linked,
                    telemetry_stack,
                    decision_trace_id,
                    flow.correlation_id,
                    frozenset(waiting_ids),
                ),
                timeout=TRACE_DEADLINE_S,
                what=f"decision trace {decision_trace_id} linked to {flow.correlation_id}",
            )

    services = httpx.get(f"{telemetry_stack.jaeger_api}/api/services", timeout=5).json()["data"]
    assert "agent-runtime" in services


async def test_prometheus_has_the_service_metrics_and_every_dashboard_panel_has_data(
    service: Service, telemetry_stack: TelemetryStack
) -> None:
    session = new_session()
    for message, decision, session_id in (
        (CREATE, "APPROVE", session),
        (FIX, "REJECT", session),
        (CREATE, "EDIT", new_session()),
    ):
        flow = await run_flow(service.base_url, message, session_id=session_id, decision=decision)
        flow.assert_ok()
    asked = await run_flow(service.base_url, ASK)
    asked.assert_ok()
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
        rated = await client.post(
            f"/v1/traces/{asked.correlation_id}/feedback", json={"score": 1, "label": "up"}
        )
    assert rated.status_code == 201, rated.text  # the feedback panels' data
    failed = await run_flow(service.base_url, FAIL)
    assert failed.status_code == 200 and failed.names()[-1:] == ["done"], failed.names()
    assert failed.of("error"), failed.names()

    # The service's own instruments (src/telemetry/names.py), as Prometheus names them.
    for expr in (
        'agent_runtime_agent_switches_total{agent_runtime_switch_from="orchestrator",'
        'agent_runtime_switch_to="coder",agent_runtime_switch_trigger="orchestrator"}',
        'agent_runtime_agent_switches_total{agent_runtime_switch_from="debug",'
        'agent_runtime_switch_to="coder",agent_runtime_switch_trigger="agent"}',
        'agent_runtime_tool_calls_total{gen_ai_tool_name="write_file",'
        'agent_runtime_tool_outcome="completed"}',
        'agent_runtime_tool_calls_total{gen_ai_tool_name="write_file",'
        'agent_runtime_tool_outcome="rejected"}',
        'agent_runtime_hitl_decisions_total{gen_ai_tool_name="write_file",'
        'agent_runtime_hitl_decision="REJECT"}',
        'agent_runtime_hitl_decisions_total{agent_runtime_hitl_decision="EDIT"}',
        'agent_runtime_hitl_wait_duration_seconds_bucket{gen_ai_tool_name="write_file"}',
        # [fail] makes the routing call fail, so the failing agent is the orchestrator.
        'agent_runtime_errors_total{gen_ai_agent_name="orchestrator",error_type=~".+"}',
        # The store-read gauges (every replica reports them; the dashboard takes their max).
        "agent_runtime_sessions_active",
        "agent_runtime_sessions_running",
        "agent_runtime_approvals_pending",
        'gen_ai_invoke_agent_duration_seconds_bucket{gen_ai_agent_name="coder"}',
        'gen_ai_execute_tool_duration_seconds_bucket{gen_ai_tool_name="write_file"}',
        "gen_ai_client_operation_duration_seconds_bucket",
        'gen_ai_evaluation_score_bucket{gen_ai_evaluation_name="user_feedback",'
        'gen_ai_agent_name="ask"}',
        'gen_ai_client_token_usage_bucket{gen_ai_token_type="output"}',
        # Span-derived RED metrics (span_metrics connector) with the configured dimensions.
        'traces_span_metrics_calls_total{span_name="POST /agent/message/stream",'
        'span_kind="SPAN_KIND_SERVER"}',
        'traces_span_metrics_duration_seconds_bucket{gen_ai_operation_name="execute_tool",'
        'gen_ai_tool_name="write_file"}',
        'traces_span_metrics_calls_total{gen_ai_operation_name="invoke_agent",'
        'gen_ai_agent_name="coder"}',
        # Span events counted by name (count connector).
        "agent_runtime_span_events_agent_switched_total",
        "agent_runtime_span_events_tool_execution_requested_total",
        "agent_runtime_span_events_hitl_approval_requested_total",
        "agent_runtime_span_events_hitl_decision_made_total",
    ):
        series = wait_for_series(telemetry_stack, expr)
        assert all(s["metric"].get("job") == "agent-runtime" for s in series), series

    # Every expression of every Grafana panel returns data (the alert rules' recorded series
    # included: this Prometheus evaluates deploy/prometheus/alerts.yml).
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = (
                target["expr"]
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "15s")
                .replace("$__range", "5m")
            )
            try:
                wait_for_series(telemetry_stack, expr)
            except AssertionError as exc:
                raise AssertionError(f"panel {panel['title']!r}: {exc}") from None


async def test_latency_histograms_carry_exemplars_that_link_to_their_traces(
    service: Service, telemetry_stack: TelemetryStack
) -> None:
    """A slow bucket links to its trace: the service's histograms (exemplar filter
    trace_based, as the service fixture sets) and the span metrics' duration histogram carry
    trace ids in Prometheus, and those traces are in Jaeger."""
    flows = [await run_flow(service.base_url, CREATE) for _ in range(3)]
    for flow in flows:
        flow.assert_ok()
    ours = {flow.correlation_id for flow in flows}

    def linked(expr: str) -> set[str] | None:
        trace_ids = {
            hex_id(exemplar["labels"]["trace_id"])
            for series in prom_exemplars(telemetry_stack, expr)
            for exemplar in series["exemplars"]
            if "trace_id" in exemplar["labels"]
        }
        return (trace_ids & ours) or None

    for expr in (
        'gen_ai_invoke_agent_duration_seconds_bucket{gen_ai_agent_name="coder"}',
        'traces_span_metrics_duration_seconds_bucket{span_kind="SPAN_KIND_SERVER"}',
    ):
        found = wait_until(
            functools.partial(linked, expr),
            timeout=METRIC_DEADLINE_S,
            what=f"exemplars of {expr} with one of {sorted(ours)}",
        )
        for trace_id in found:
            wait_for_trace(telemetry_stack, trace_id, span_names=["agent.request"])


async def test_the_audit_file_holds_every_decision_and_switch_with_its_trace(
    service: Service, telemetry_stack: TelemetryStack
) -> None:
    session = new_session()
    flows = [
        await run_flow(service.base_url, CREATE, session_id=session, decision="APPROVE"),
        await run_flow(service.base_url, FIX, session_id=session, decision="REJECT"),
    ]
    for flow in flows:
        flow.assert_ok()
    records = await audit_records(service.base_url, session)
    types = [r["event_type"] for r in records]
    # The seed's record types (GET /v1/audit's event_type), not the OTel event names.
    assert types.count("hitl_decision_made") == 2, types
    assert types.count("agent_switched") >= 3, types  # ->coder; ->debug, debug->coder
    stream_traces = {flow.correlation_id for flow in flows}
    for record in records:
        if record["event_type"] in ("hitl_decision_made", "agent_switched"):
            # A decision belongs to the waiting request's trace, not the decision request's.
            assert hex_id(record["trace_id"]) in stream_traces, record
    wait_for_audit_file(telemetry_stack, records)


async def test_a_jaeger_outage_loses_no_trace(
    service: Service, telemetry_stack: TelemetryStack
) -> None:
    telemetry_stack.jaeger.stop()
    try:
        flows = [await run_flow(service.base_url, ASK) for _ in range(20)]
    finally:
        telemetry_stack.restart(telemetry_stack.jaeger)
    for flow in flows:
        flow.assert_ok()
    assert len({flow.correlation_id for flow in flows}) == 20
    # Jaeger came back empty (memory storage): all 20 arrive from the Collector's queue.
    for flow in flows:
        wait_for_trace(
            telemetry_stack,
            flow.correlation_id,
            span_names=["POST /agent/message/stream", "invoke_agent ask"],
            timeout=120,
        )


async def test_a_collector_crash_fails_no_request_and_loses_no_audit_record(
    service: Service, telemetry_stack: TelemetryStack
) -> None:
    session = new_session()
    (await run_flow(service.base_url, CREATE, session_id=session)).assert_ok()

    async def crash_collector() -> None:
        # While the stream waits for its human: SIGKILL, no flush, no goodbye.
        await asyncio.to_thread(telemetry_stack.collector.kill)

    started = time.monotonic()
    try:
        mid_run = await run_flow(
            service.base_url, FIX, session_id=session, before_decision=crash_collector
        )
        other = new_session()
        while_down = [
            await run_flow(service.base_url, CREATE, session_id=other, decision="REJECT"),
            await run_flow(service.base_url, ASK, session_id=other),
        ]
        assert not telemetry_stack.collector.running
    finally:
        if not telemetry_stack.collector.running:
            telemetry_stack.restart(telemetry_stack.collector)
    for flow in (mid_run, *while_down):
        flow.assert_ok()
    # Telemetry never blocks a request: the down Collector cost the requests no time to speak of.
    assert time.monotonic() - started < 60

    records = [
        *await audit_records(service.base_url, session),
        *await audit_records(service.base_url, other),
    ]
    types = [r["event_type"] for r in records]
    assert types.count("hitl_decision_made") == 3, types
    # Records written while the Collector was away reach the file once the outbox re-sends.
    wait_for_audit_file(telemetry_stack, records, timeout=120)
