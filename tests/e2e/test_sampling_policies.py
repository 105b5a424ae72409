"""The gateway's sampling policies, one by one, on hand-made traces.

A gateway Collector (deploy/collector/otel-gateway.yaml: 0 % of the rest, slow above 2 s,
decided 1 s after the root span) exports to the session's Jaeger. The traces are written
here as OTLP/JSON with chosen timestamps, so durations and human waits of many seconds cost
no waiting: each trace is built to match exactly one policy, or none. The gateway runs with
the `recordpolicy` feature gate, which tags every kept span with the policy that kept it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import TelemetryStack, jaeger_trace, wait_until
from scripts import processes

pytestmark = pytest.mark.e2e

SLOW_MS = 2000
S = 1_000_000_000  # nanoseconds


@dataclass
class Gateway:
    otlp_http: str
    metrics: str


@pytest.fixture(scope="module")
def gateway(
    telemetry_stack: TelemetryStack,
    collector_binary: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    ports = processes.CollectorPorts.free(processes.PortPool())
    state = tmp_path_factory.mktemp("gateway-policies")
    env = {
        **processes.collector_env(ports, state / "gateway", jaeger=telemetry_stack.ports.jaeger),
        "OTELCOL_TAIL_SAMPLING_PERCENTAGE": "0",
        "OTELCOL_TAIL_SAMPLING_SLOW_MS": str(SLOW_MS),
        "OTELCOL_TAIL_SAMPLING_WAIT_AFTER_ROOT": "1s",
    }
    proc = processes.collector_process(
        "gateway-policies",
        collector_binary,
        [processes.GATEWAY_CONFIG],
        env,
        ports,
        state,
        extra_args=["--feature-gates=processor.tailsamplingprocessor.recordpolicy"],
    )
    processes.start_all([proc], timeout=60)
    try:
        yield Gateway(
            f"http://127.0.0.1:{ports.otlp_http}/v1/traces",
            f"http://127.0.0.1:{ports.telemetry}/metrics",
        )
    finally:
        proc.stop()


# --- hand-made traces --------------------------------------------------------------------


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attributes(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _value(value)} for key, value in attrs.items()]


@dataclass
class Trace:
    """One trace as the service would write it, with times relative to its start (seconds)."""

    name: str
    expected_policy: str | None
    trace_id: str = field(default_factory=lambda: secrets.token_hex(16))
    spans: list[dict[str, Any]] = field(default_factory=list)
    origin: int = field(default_factory=lambda: time.time_ns() - 60 * S)

    def span(
        self,
        name: str,
        start: float,
        end: float,
        *,
        parent: str | None = None,
        kind: int = 1,
        attrs: dict[str, Any] | None = None,
        events: list[tuple[float, str, dict[str, Any]]] = (),  # type: ignore[assignment]
        error: bool = False,
    ) -> str:
        span_id = secrets.token_hex(8)
        span: dict[str, Any] = {
            "traceId": self.trace_id,
            "spanId": span_id,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(self.origin + int(start * S)),
            "endTimeUnixNano": str(self.origin + int(end * S)),
            "attributes": _attributes(attrs or {}),
            "events": [
                {
                    "timeUnixNano": str(self.origin + int(at * S)),
                    "name": event,
                    "attributes": _attributes(event_attrs),
                }
                for at, event, event_attrs in events
            ],
        }
        if parent is not None:
            span["parentSpanId"] = parent
        if error:
            span["status"] = {"code": 2, "message": "boom"}
        self.spans.append(span)
        return span_id


def request(
    name: str,
    expected_policy: str | None,
    *,
    chat_s: float = 0.1,
    wait_s: float | None = None,
    tool_run_s: float = 0.05,
    decision: str = "APPROVE",
    outcome: str = "decided",
    tool_outcome: str = "completed",
    error: bool = False,
) -> Trace:
    """A coder request: root SERVER span, agent.request, invoke_agent, a chat call, and a
    write_file call that waits ``wait_s`` for its human (no wait, no approval: None)."""
    trace = Trace(name, expected_policy)
    tool_s = tool_run_s + (wait_s or 0.0)
    total = chat_s + tool_s + 0.02
    root = trace.span("POST /agent/message/stream", 0, total, kind=2)
    req = trace.span("agent.request", 0.005, total - 0.005, parent=root)
    agent = trace.span(
        "invoke_agent coder",
        0.01,
        total - 0.01,
        parent=req,
        attrs={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "coder"},
    )
    trace.span(
        "chat scripted",
        0.01,
        0.01 + chat_s,
        parent=agent,
        kind=3,
        attrs={"gen_ai.operation.name": "chat"},
        error=error,
    )
    events: list[tuple[float, str, dict[str, Any]]] = []
    start = 0.01 + chat_s
    if wait_s is not None:
        events = [
            (start, "tool.approval_required", {"gen_ai.tool.name": "write_file"}),
            (start, "hitl.approval_requested", {"gen_ai.tool.name": "write_file"}),
            (
                start + wait_s,
                "hitl.decision_made",
                {
                    "agent_runtime.hitl.decision": decision,
                    "agent_runtime.hitl.outcome": outcome,
                    "agent_runtime.hitl.wait_ms": round(wait_s * 1000, 1),
                },
            ),
        ]
    trace.span(
        "execute_tool write_file",
        start,
        start + tool_s,
        parent=agent,
        attrs={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "write_file",
            "agent_runtime.tool.outcome": tool_outcome,
        },
        events=events,
    )
    return trace


TRACES = [
    request("a failed model call", "errors", error=True),
    request(
        "a human REJECT",
        "human-rejected-edited-or-timed-out",
        wait_s=0.5,
        decision="REJECT",
        tool_outcome="rejected",
    ),
    request("a human EDIT", "human-rejected-edited-or-timed-out", wait_s=0.5, decision="EDIT"),
    request(
        "no answer: the timeout REJECTs",
        "human-rejected-edited-or-timed-out",
        wait_s=300.0,
        decision="REJECT",
        outcome="timeout",
        tool_outcome="rejected",
    ),
    request(
        "a tool call rejected (its outcome only)",
        "human-rejected-edited-or-timed-out",
        tool_outcome="rejected",
    ),
    request("slow, no human", "slow-without-a-human", chat_s=3.0),
    request(
        "slow model call beside a human wait", "slow-beside-a-human-wait", chat_s=3.0, wait_s=20.0
    ),
    request(
        "slow tool run after the approval", "slow-beside-a-human-wait", wait_s=20.0, tool_run_s=3.0
    ),
    request("fast, approved quickly", None, wait_s=0.5),
    request("fast, no human", None),
    request("slow only because the human took 4 minutes", None, wait_s=240.0),
]


def _decisions(metrics_url: str) -> float:
    """How many traces the gateway decided (otelcol_processor_tail_sampling_global_*)."""
    total = 0.0
    for line in httpx.get(metrics_url, timeout=5).text.splitlines():
        if line.startswith("otelcol_processor_tail_sampling_global_count_traces_sampled"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _policies(stack: TelemetryStack, trace_id: str) -> set[str]:
    """The `tailsampling.policy` the gateway put on the kept trace's scopes, read through
    Jaeger's OTLP-shaped API v3 (its v1 API shows no scope attributes)."""
    response = httpx.get(f"{stack.jaeger_api}/api/v3/traces/{trace_id}", timeout=5)
    response.raise_for_status()
    return {
        str(next(iter(attribute["value"].values())))
        for resource_spans in response.json()["result"]["resourceSpans"]
        for scope_spans in resource_spans["scopeSpans"]
        for attribute in scope_spans.get("scope", {}).get("attributes", [])
        if attribute["key"] == "tailsampling.policy"
    }


def test_each_policy_keeps_its_traces_whole_and_nothing_else(
    gateway: Gateway, telemetry_stack: TelemetryStack
) -> None:
    before = _decisions(gateway.metrics)
    payload = {
        "resourceSpans": [
            {
                "resource": {"attributes": _attributes({"service.name": "policy-test"})},
                "scopeSpans": [{"spans": [s for t in TRACES for s in t.spans]}],
            }
        ]
    }
    response = httpx.post(gateway.otlp_http, json=payload, timeout=10)
    assert response.status_code == 200, response.text

    wait_until(
        lambda: _decisions(gateway.metrics) - before >= len(TRACES),
        timeout=30,
        what=f"the gateway's decisions on {len(TRACES)} traces",
    )
    kept = [t for t in TRACES if t.expected_policy is not None]

    def whole(trace: Trace) -> bool:
        found = jaeger_trace(telemetry_stack, trace.trace_id)
        return found is not None and {s["spanID"] for s in found["spans"]} == {
            s["spanId"] for s in trace.spans
        }

    wait_until(
        lambda: all(whole(trace) for trace in kept),
        timeout=30,
        what="the kept traces in Jaeger, whole",
    )
    for trace in kept:
        assert _policies(telemetry_stack, trace.trace_id) == {trace.expected_policy}, trace.name
    # Decided together with the kept ones, which Jaeger already has: the rest were dropped.
    for trace in TRACES:
        if trace.expected_policy is None:
            assert jaeger_trace(telemetry_stack, trace.trace_id) is None, trace.name
