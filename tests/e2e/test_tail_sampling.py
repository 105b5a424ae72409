"""Tail sampling on one machine (the overlay): the kept traces by policy, metrics exact.

A second Collector runs otel-collector.yaml plus deploy/collector/otel-collector.tail-sampling.yaml
(decided 1 s after the root span, 0 % of the other traces), exporting to the session's Jaeger,
with a second service process pointed at it. The policies themselves are checked one by one
with hand-made traces in test_sampling_policies.py; the gateway tier in test_tiers.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from e2e_support import (
    ASK,
    CREATE,
    FAIL,
    SERVICE_ENTRY_POINT,
    TelemetryStack,
    jaeger_trace,
    run_flow,
    wait_for_trace,
    wait_until,
)
from scripts import processes

pytestmark = pytest.mark.e2e


@dataclass
class SampledService:
    base_url: str
    collector_metrics: str


@pytest.fixture(scope="module")
def sampled_service(
    telemetry_stack: TelemetryStack,
    collector_binary: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SampledService]:
    if not SERVICE_ENTRY_POINT.exists():
        pytest.fail(f"{SERVICE_ENTRY_POINT} is missing: run `uv sync` (make sync) first")
    pool = processes.PortPool()
    ports = processes.CollectorPorts.free(pool)
    service_port = pool.take()
    state = tmp_path_factory.mktemp("tail-sampling")
    collector_env = {
        **processes.collector_env(ports, state / "collector", jaeger=telemetry_stack.ports.jaeger),
        "OTELCOL_TAIL_SAMPLING_WAIT_AFTER_ROOT": "1s",
        "OTELCOL_TAIL_SAMPLING_PERCENTAGE": "0",
    }
    collector = processes.collector_process(
        "collector-tail-sampling",
        collector_binary,
        [processes.COLLECTOR_CONFIG, processes.TAIL_SAMPLING_OVERLAY],
        collector_env,
        ports,
        state,
    )
    service = processes.service_process(
        "agent-runtime-tail-sampling",
        service_port,
        processes.service_env(service_port, state / "data", ports.otlp_grpc),
        state / "agent-runtime.log",
    )
    processes.start_all([collector, service], timeout=60)
    try:
        yield SampledService(
            f"http://127.0.0.1:{service_port}", f"http://127.0.0.1:{ports.prometheus}/metrics"
        )
    finally:
        processes.stop_all([collector, service])


def _span_metric_calls(metrics_url: str, span_name: str) -> float:
    """traces_span_metrics_calls_total for ``span_name``, summed, from the exporter's page."""
    total = 0.0
    for line in httpx.get(metrics_url, timeout=5).text.splitlines():
        if line.startswith("traces_span_metrics_calls_total{") and (
            f'span_name="{span_name}"' in line
        ):
            total += float(re.split(r"\s+", line.strip())[-1])
    return total


async def test_errors_and_rejected_traces_are_kept_the_rest_sampled_metrics_exact(
    sampled_service: SampledService, telemetry_stack: TelemetryStack
) -> None:
    url = sampled_service.base_url
    rejected = await run_flow(url, CREATE, decision="REJECT")
    approved = await run_flow(url, CREATE, decision="APPROVE")
    ordinary = [await run_flow(url, ASK) for _ in range(5)]
    for flow in (rejected, approved, *ordinary):
        flow.assert_ok()
    # Sent last: once this error trace is in Jaeger, the others (whose root spans arrived
    # earlier and were decided earlier) would be there too, had they been kept.
    failed = await run_flow(url, FAIL)
    assert failed.of("error"), failed.names()

    wait_for_trace(
        telemetry_stack,
        rejected.correlation_id,
        span_names=["POST /agent/message/stream", "invoke_agent coder", "execute_tool write_file"],
        events=["hitl.approval_requested", "hitl.decision_made"],
    )
    wait_for_trace(telemetry_stack, failed.correlation_id, span_names=["agent.request"])
    # A human who approved is no reason to keep a trace: at 0 %, it goes like the others.
    for flow in (approved, *ordinary):
        assert jaeger_trace(telemetry_stack, flow.correlation_id) is None, flow.correlation_id

    # span_metrics sits before the sampler: it counted every ordinary trace's agent span.
    wait_until(
        lambda: _span_metric_calls(sampled_service.collector_metrics, "invoke_agent ask") >= 5,
        timeout=30,
        what="span metrics for all 5 ordinary traces",
    )
