"""The production overlay: tail sampling keeps errors and HITL traces, metrics stay exact.

A second Collector runs otel-collector.yaml plus deploy/collector/otel-collector.tail-sampling.yaml
(decision wait 1 s, 0 % of the ordinary traces), exporting to the session's Jaeger, with a
second service process pointed at it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from e2e_support import SERVICE_ENTRY_POINT, ManagedProcess, TelemetryStack, stackctl, wait_until
from test_pipeline import ASK, CREATE, FAIL, jaeger_trace, run_flow, wait_for_trace

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
    ports = stackctl.Ports.free()
    state = tmp_path_factory.mktemp("tail-sampling")
    collector_env = {
        **stackctl.collector_env(ports, state / "collector"),
        "OTELCOL_JAEGER_ENDPOINT": f"127.0.0.1:{telemetry_stack.ports.jaeger_otlp_grpc}",
        "OTELCOL_TAIL_SAMPLING_DECISION_WAIT": "1s",
        "OTELCOL_TAIL_SAMPLING_PERCENTAGE": "0",
    }
    collector = ManagedProcess(
        "collector (tail sampling)",
        [
            str(collector_binary),
            f"--config={stackctl.COLLECTOR_CONFIG}",
            f"--config={stackctl.TAIL_SAMPLING_OVERLAY}",
        ],
        env=collector_env,
        log_path=state / "collector.log",
        health_url=f"http://127.0.0.1:{ports.collector_health}/",
    )
    service = ManagedProcess(
        "agent-runtime (tail sampling)",
        [str(SERVICE_ENTRY_POINT), "serve"],
        env=stackctl.service_env(ports, state / "data"),
        log_path=state / "agent-runtime.log",
        health_url=f"http://127.0.0.1:{ports.service}/healthz",
    )
    started: list[ManagedProcess] = []
    try:
        for proc in (collector, service):
            proc.start()
            started.append(proc)
            proc.wait_healthy(timeout=60)
        yield SampledService(
            f"http://127.0.0.1:{ports.service}",
            f"http://127.0.0.1:{ports.collector_prometheus}/metrics",
        )
    finally:
        for proc in reversed(started):
            proc.stop()


def _span_metric_calls(metrics_url: str, span_name: str) -> float:
    """traces_span_metrics_calls_total for ``span_name``, summed, from the exporter's page."""
    total = 0.0
    for line in httpx.get(metrics_url, timeout=5).text.splitlines():
        if line.startswith("traces_span_metrics_calls_total{") and (
            f'span_name="{span_name}"' in line
        ):
            total += float(re.split(r"\s+", line.strip())[-1])
    return total


async def test_errors_and_hitl_traces_are_kept_the_rest_sampled_metrics_exact(
    sampled_service: SampledService, telemetry_stack: TelemetryStack
) -> None:
    url = sampled_service.base_url
    hitl = await run_flow(url, CREATE)
    hitl.assert_ok()
    ordinary = [await run_flow(url, ASK) for _ in range(5)]
    for flow in ordinary:
        flow.assert_ok()
    # Sent last: once this error trace is in Jaeger, the ordinary traces (which ended
    # earlier and were decided earlier) would be there too, had they been kept.
    failed = await run_flow(url, FAIL)
    assert failed.of("error"), failed.names()

    wait_for_trace(
        telemetry_stack,
        hitl.correlation_id,
        span_names=["POST /agent/message/stream", "invoke_agent coder", "execute_tool write_file"],
        events=["hitl.approval_requested", "hitl.decision_made"],
    )
    wait_for_trace(telemetry_stack, failed.correlation_id, span_names=["agent.request"])
    for flow in ordinary:
        assert jaeger_trace(telemetry_stack, flow.correlation_id) is None, flow.correlation_id

    # span_metrics sits before the sampler: it counted every ordinary trace's agent span.
    wait_until(
        lambda: _span_metric_calls(sampled_service.collector_metrics, "invoke_agent ask") >= 5,
        timeout=30,
        what="span metrics for all 5 ordinary traces",
    )
