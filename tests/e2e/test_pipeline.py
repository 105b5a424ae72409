"""The service end to end through the real Collector into Jaeger, Prometheus and the audit file.

The service runs as a process (`agent-runtime serve`) exporting OTLP/gRPC to the Collector;
these tests speak only its HTTP contract (DESIGN.md §5) and then read the backends' own
APIs: Jaeger's /api/traces/{id}, Prometheus' /api/v1/query, the Collector's audit file.
Everything waits by polling with a deadline. The outage tests stop Jaeger and kill the
Collector, then bring them back on the same ports and state, for the tests that follow.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import REPO, Service, TelemetryStack, wait_until

pytestmark = pytest.mark.e2e

CREATE = "Create a sorting function"  # orchestrator -> coder, write_file (approval)
FIX = "Fix the bug in sort.py"  # orchestrator -> debug, read_file, debug -> coder, write_file
ASK = "What is a closure?"  # orchestrator -> ask, text only
FAIL = "What is a closure? [fail]"  # the scripted provider raises mid-stream
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "agent-runtime.json"
TRACE_DEADLINE_S = 60.0
METRIC_DEADLINE_S = 60.0


# --- the service's HTTP contract -------------------------------------------------------


@dataclass
class Flow:
    """One POST /agent/message/stream as the client saw it."""

    session_id: str
    status_code: int
    correlation_id: str
    events: list[tuple[str, Any]] = field(default_factory=list)
    decisions: list[httpx.Response] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def of(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    def assert_ok(self) -> None:
        """The request succeeded: 200, meta first, done last, no error, decisions accepted."""
        assert self.status_code == 200, self
        names = self.names()
        assert names[:1] == ["meta"] and names[-1:] == ["done"], names
        assert "error" not in names, self.of("error")
        assert self.of("meta")[0]["correlation_id"] == self.correlation_id
        for response in self.decisions:
            assert response.is_success, (response.status_code, response.text)


def _new_session() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


async def run_flow(
    base_url: str,
    message: str,
    *,
    session_id: str | None = None,
    decision: str = "APPROVE",
    agent: str | None = None,
    before_decision: Callable[[], Awaitable[None]] | None = None,
    timeout: float = 60.0,
) -> Flow:
    """Stream one message; answer every approval_required from a second client.

    The stream pauses at approval_required until the decision is posted by another
    request, so the decision goes out in its own task on its own client while this one
    keeps reading the stream.
    """
    session_id = session_id or _new_session()
    # Every message is made unique: the scripted model derives tool-call ids from the
    # conversation, and approval ids are unique service-wide (see the closing note).
    message = f"{message} (e2e {uuid.uuid4().hex[:8]})"
    body: dict[str, Any] = {"session_id": session_id, "message": message}
    if agent is not None:
        body["agent"] = agent

    async def decide(client: httpx.AsyncClient, approval: dict[str, Any]) -> httpx.Response:
        if before_decision is not None:
            await before_decision()
        payload: dict[str, Any] = {"decision": decision}
        if decision == "EDIT":
            payload["arguments"] = {**approval.get("arguments", {}), "content": "# edited\n"}
        return await client.post(f"/v1/approvals/{approval['call_id']}", json=payload)

    async def stream() -> Flow:
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=timeout) as client,
            httpx.AsyncClient(base_url=base_url, timeout=timeout) as decider,
        ):
            pending: list[asyncio.Task[httpx.Response]] = []
            async with client.stream("POST", "/agent/message/stream", json=body) as response:
                flow = Flow(
                    session_id,
                    response.status_code,
                    response.headers.get("x-correlation-id", ""),
                )
                if response.status_code != 200:
                    await response.aread()
                    flow.events.append(("http_error", response.text))
                    return flow
                event, data_lines = "message", []
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        continue  # an SSE comment (keep-alive)
                    if line.startswith("event:"):
                        event = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        data_lines.append(line.removeprefix("data:").removeprefix(" "))
                    elif line == "" and data_lines:
                        data = json.loads("\n".join(data_lines))
                        flow.events.append((event, data))
                        if event == "approval_required":
                            pending.append(asyncio.create_task(decide(decider, data)))
                        event, data_lines = "message", []
            flow.decisions = list(await asyncio.gather(*pending))
            return flow

    return await asyncio.wait_for(stream(), timeout=timeout)


async def audit_records(base_url: str, session_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.get("/v1/audit", params={"session_id": session_id, "limit": 1000})
    response.raise_for_status()
    body = response.json()
    if isinstance(body, dict):  # {"records": [...]} or the like: the one list in it
        lists = [value for value in body.values() if isinstance(value, list)]
        assert len(lists) == 1, body
        body = lists[0]
    assert isinstance(body, list)
    return body


# --- the backends ----------------------------------------------------------------------


def _hex(value: str) -> str:
    return value.lower().rjust(32, "0") if len(value) > 16 else value.lower().rjust(16, "0")


def jaeger_trace(stack: TelemetryStack, trace_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{stack.jaeger_api}/api/traces/{trace_id}", timeout=5)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    data = response.json().get("data") or []
    return data[0] if data else None


def span_events(span: dict[str, Any]) -> list[str]:
    """Jaeger shows OTel span events as logs whose field `event` holds the name."""
    names = []
    for log in span.get("logs", []):
        for log_field in log.get("fields", []):
            if log_field.get("key") == "event":
                names.append(str(log_field.get("value")))
    return names


def wait_for_trace(
    stack: TelemetryStack,
    trace_id: str,
    *,
    span_names: Iterable[str] = (),
    events: Iterable[str] = (),
    timeout: float = TRACE_DEADLINE_S,
) -> dict[str, Any]:
    """Poll Jaeger until the trace holds the spans and span events asked for."""
    want_spans, want_events = set(span_names), set(events)
    seen: dict[str, Any] = {}

    def probe() -> dict[str, Any] | None:
        trace = jaeger_trace(stack, trace_id)
        if trace is None:
            return None
        spans = trace["spans"]
        have_spans = {span["operationName"] for span in spans}
        have_events = {name for span in spans for name in span_events(span)}
        seen.update(spans=sorted(have_spans), events=sorted(have_events))
        ok = want_spans <= have_spans and want_events <= have_events
        return trace if ok else None

    try:
        return wait_until(probe, timeout=timeout, what=f"trace {trace_id} in Jaeger")
    except TimeoutError as exc:
        raise AssertionError(
            f"{exc}; wanted spans {sorted(want_spans)} events {sorted(want_events)}; saw {seen}"
        ) from None


def decision_is_linked(
    stack: TelemetryStack, decision_trace_id: str, stream_trace_id: str, span_ids: frozenset[str]
) -> bool:
    """The decision request's trace has a span linked to one of ``span_ids`` of the stream's."""
    trace = jaeger_trace(stack, decision_trace_id)
    return trace is not None and any(
        _hex(ref["traceID"]) == stream_trace_id and _hex(ref["spanID"]) in span_ids
        for span in trace["spans"]
        for ref in span.get("references", [])
    )


def prom_query(stack: TelemetryStack, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.prometheus_api}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    assert isinstance(result, list)
    return result


def wait_for_series(
    stack: TelemetryStack, expr: str, timeout: float = METRIC_DEADLINE_S
) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        return prom_query(stack, expr) or None

    try:
        return wait_until(probe, timeout=timeout, what=f"Prometheus data for {expr}")
    except TimeoutError as exc:
        names = prom_query(stack, 'count by (__name__) ({__name__=~"agent_runtime_.+|gen_ai_.+"})')
        have = sorted(series["metric"]["__name__"] for series in names)
        raise AssertionError(f"{exc}; the service's series present: {have}") from None


def audit_file_records(path: Path) -> dict[str, dict[str, str]]:
    """record_id -> {trace_id, event_type} from the file exporter's JSON lines (and rotations)."""
    found: dict[str, dict[str, str]] = {}
    for file in sorted(path.parent.glob(f"{path.stem}*{path.suffix}")):
        for line in file.read_text(errors="replace").splitlines():
            try:
                payload = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line still being written
            for resource_logs in payload.get("resourceLogs", []):
                for scope_logs in resource_logs.get("scopeLogs", []):
                    for record in scope_logs.get("logRecords", []):
                        attrs = {
                            a["key"]: next(iter(a.get("value", {}).values()), None)
                            for a in record.get("attributes", [])
                        }
                        record_id = attrs.get("agent_runtime.audit.record_id")
                        if record_id:
                            found[str(record_id)] = {
                                "trace_id": str(record.get("traceId", "")).lower(),
                                "event_type": str(attrs.get("agent_runtime.audit.event_type")),
                            }
    return found


def wait_for_audit_file(
    stack: TelemetryStack, records: list[dict[str, Any]], timeout: float = 90.0
) -> None:
    """Every record (from GET /v1/audit) is in the audit file with its trace id."""
    expected = {r["record_id"]: _hex(r["trace_id"]) for r in records}
    missing: dict[str, str] = {}

    def probe() -> bool:
        in_file = audit_file_records(stack.audit_file)
        missing.clear()
        for record_id, trace_id in expected.items():
            got = in_file.get(record_id)
            if got is None or got["trace_id"] != trace_id:
                missing[record_id] = trace_id
        return not missing

    try:
        wait_until(probe, timeout=timeout, what=f"{len(expected)} audit records in the file")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; missing {len(missing)}: {missing}") from None


# --- the tests -------------------------------------------------------------------------


async def test_each_trace_reaches_jaeger_with_its_events_and_the_decision_link(
    service: Service, telemetry_stack: TelemetryStack
) -> None:
    session = _new_session()
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
        assert {_hex(span["traceID"]) for span in trace["spans"]} == {flow.correlation_id}
        waiting = [s for s in trace["spans"] if s["operationName"] == "execute_tool write_file"]
        # The decision event lands on the span that waited for it.
        assert any(
            {"hitl.approval_requested", "hitl.decision_made"} <= set(span_events(s))
            for s in waiting
        ), [span_events(s) for s in waiting]

        # The decision request is its own trace, linked to the waiting execute_tool span.
        waiting_ids = {_hex(s["spanID"]) for s in waiting}
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
    session = _new_session()
    for message, decision, session_id in (
        (CREATE, "APPROVE", session),
        (FIX, "REJECT", session),
        (CREATE, "EDIT", _new_session()),
    ):
        flow = await run_flow(service.base_url, message, session_id=session_id, decision=decision)
        flow.assert_ok()
    (await run_flow(service.base_url, ASK)).assert_ok()
    failed = await run_flow(service.base_url, FAIL)
    assert failed.status_code == 200 and failed.names()[-1:] == ["done"], failed.names()
    assert failed.of("error"), failed.names()

    # The service's own instruments (DESIGN.md §7), as Prometheus names them.
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
        "agent_runtime_sessions_active",
        'gen_ai_invoke_agent_duration_seconds_bucket{gen_ai_agent_name="coder"}',
        'gen_ai_execute_tool_duration_seconds_bucket{gen_ai_tool_name="write_file"}',
        "gen_ai_client_operation_duration_seconds_bucket",
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

    # Every expression of every Grafana panel returns data.
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


async def test_the_audit_file_holds_every_decision_and_switch_with_its_trace(
    service: Service, telemetry_stack: TelemetryStack
) -> None:
    session = _new_session()
    flows = [
        await run_flow(service.base_url, CREATE, session_id=session, decision="APPROVE"),
        await run_flow(service.base_url, FIX, session_id=session, decision="REJECT"),
    ]
    for flow in flows:
        flow.assert_ok()
    records = await audit_records(service.base_url, session)
    types = [r["event_type"] for r in records]
    assert types.count("hitl.decision_made") == 2, types
    assert types.count("agent.switched") >= 3, types  # ->coder; ->debug, debug->coder
    stream_traces = {flow.correlation_id for flow in flows}
    for record in records:
        if record["event_type"] in ("hitl.decision_made", "agent.switched"):
            # A decision belongs to the waiting request's trace, not the decision request's.
            assert _hex(record["trace_id"]) in stream_traces, record
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
    session = _new_session()
    (await run_flow(service.base_url, CREATE, session_id=session)).assert_ok()

    async def crash_collector() -> None:
        # While the stream waits for its human: SIGKILL, no flush, no goodbye.
        await asyncio.to_thread(telemetry_stack.collector.kill)

    started = time.monotonic()
    try:
        mid_run = await run_flow(
            service.base_url, FIX, session_id=session, before_decision=crash_collector
        )
        other = _new_session()
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
    assert types.count("hitl.decision_made") == 3, types
    # Records written while the Collector was away reach the file once the outbox re-sends.
    wait_for_audit_file(telemetry_stack, records, timeout=120)
