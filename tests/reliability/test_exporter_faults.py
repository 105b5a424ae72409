"""Item 3, exporter faults: the Collector absent, stalled (accepts, never answers) and
answering 503. Requests neither fail nor wait on it, memory stays bounded, and what is
dropped is counted in ``agent_runtime.telemetry.dropped`` (read from the service's own
metric export, the console exporter on stdout), with the SDK's warning logged once per
interval rather than once per dropped item."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from telemetry import names as n
from tests.reliability.support import (
    ErrorCollector,
    ServiceProcess,
    StallingListener,
    converse,
    free_port,
    poll,
    running_service,
    scale,
)

REQUESTS = scale(120, 1500)
WARMUP = 20
CONCURRENCY = 4
QUEUE = 128
RSS_GROWTH_LIMIT = 40 * 1024 * 1024
SIGNALS = ("traces", "logs")
EXPORTER_WARNINGS = ("Queue full", "Transient error", "Failed to export", "export raised")
FAULTY = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    # the service's own metrics (the dropped counter among them) go to stdout, the one
    # channel that works while the Collector does not
    "OTEL_METRICS_EXPORTER": "console",
    "OTEL_METRIC_EXPORT_INTERVAL": "300",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
    # small queues, so a short run fills them and shows the bound
    "OTEL_BSP_MAX_QUEUE_SIZE": str(QUEUE),
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "64",
    "OTEL_BLRP_MAX_QUEUE_SIZE": str(QUEUE),
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "64",
}


@dataclass
class Run:
    latencies: list[float]
    failures: list[str]
    rss_after_warmup: int
    rss_end: int
    seconds: float

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.latencies, n=20)[-1]


async def _drive(service: ServiceProcess, tag: str) -> Run:
    """REQUESTS conversations, CONCURRENCY at a time; latency of each after the warm-up."""
    latencies: list[float] = []
    failures: list[str] = []
    rss_after_warmup = 0
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:

        async def one(index: int) -> None:
            begun = time.monotonic()
            outcome = await converse(http, f"{tag}-{index:05d}", "What is a closure?")
            if not outcome.ok:
                failures.append(f"{index}: {outcome.status} {outcome.error}")
            elif index >= WARMUP:
                latencies.append(time.monotonic() - begun)

        for wave in range(0, REQUESTS, CONCURRENCY):
            if wave == WARMUP:
                rss_after_warmup = service.rss()
            await asyncio.gather(*(one(i) for i in range(wave, min(wave + CONCURRENCY, REQUESTS))))
    return Run(latencies, failures, rss_after_warmup, service.rss(), time.monotonic() - started)


def _dropped(stdout: str) -> dict[str, float]:
    """The latest cumulative ``agent_runtime.telemetry.dropped`` by signal, from the console
    metric exporter's JSON documents."""
    decoder, index, latest = json.JSONDecoder(), 0, {}
    while (start := stdout.find("{", index)) != -1:
        try:
            document, index = decoder.raw_decode(stdout, start)
        except json.JSONDecodeError:
            break  # a document still being written
        for resource in document.get("resource_metrics", []):
            for scope in resource.get("scope_metrics", []):
                for metric in scope.get("metrics", []):
                    if metric.get("name") != n.METRIC_TELEMETRY_DROPPED:
                        continue
                    for point in metric["data"]["data_points"]:
                        signal = point["attributes"].get(n.TELEMETRY_SIGNAL, "?")
                        latest[signal] = float(point["value"])
    return latest


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Run:
    workdir = tmp_path_factory.mktemp("baseline")
    with running_service(workdir, workdir / "data", name="baseline") as service:
        run = asyncio.run(_drive(service, "base"))
    assert run.failures == []
    return run


@pytest.fixture(params=["absent", "stalled", "errors"])
def faulty_collector(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "absent":
        yield {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    elif request.param == "stalled":
        listener = StallingListener()
        try:
            yield {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{listener.port}"}
        finally:
            listener.close()
    else:
        collector = ErrorCollector(503)
        try:
            yield {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            }
        finally:
            collector.close()
            assert collector.requests > 0  # the exporter did reach it


async def test_requests_neither_fail_nor_wait_and_drops_are_counted(
    tmp_path: Path, baseline: Run, faulty_collector: dict[str, str], request
) -> None:
    mode = request.node.callspec.params["faulty_collector"]
    env = {**FAULTY, **faulty_collector}
    with running_service(tmp_path, tmp_path / "data", name=mode, **env) as service:
        run = await _drive(service, mode)
        dropped = poll(
            lambda: (
                (d := _dropped(service.stdout())) and min(d.get(k, 0) for k in SIGNALS) > 0 and d
            ),
            timeout_s=20,
            what="agent_runtime.telemetry.dropped on the metric export",
        )
        stderr = service.stderr()
    assert run.failures == []
    # requests do not wait on the exporter
    assert run.p50 <= 2 * baseline.p50 + 0.2, (run.p50, baseline.p50)
    assert run.p95 <= 2 * baseline.p95 + 0.2, (run.p95, baseline.p95)
    # memory stays bounded while the queues are full and dropping
    growth = run.rss_end - run.rss_after_warmup
    assert growth <= RSS_GROWTH_LIMIT, growth
    # what was dropped is counted: every request ends ~6 spans; the queue holds QUEUE
    produced_spans = 5 * REQUESTS
    assert dropped["traces"] >= produced_spans - 3 * QUEUE - 64 * 4, dropped
    # the "Queue full" warning is rate-limited (one per 20 s window and signal), not per item
    queue_full = stderr.count("Queue full")
    assert queue_full <= 2 * (run.seconds / 20 + 1), queue_full
    # and the exporters' own warnings come per failed batch or retry, not per item
    warnings = sum(stderr.count(marker) for marker in EXPORTER_WARNINGS)
    assert warnings * 10 <= sum(dropped.values()), (warnings, dropped)
    print(
        f"\n{mode}: {REQUESTS} requests, {len(run.failures)} failed, p50 {run.p50 * 1e3:.1f} ms"
        f" (baseline {baseline.p50 * 1e3:.1f}), p95 {run.p95 * 1e3:.1f} ms (baseline "
        f"{baseline.p95 * 1e3:.1f}); RSS {run.rss_after_warmup / 2**20:.1f} -> "
        f"{run.rss_end / 2**20:.1f} MiB; dropped {dropped}; 'Queue full' logged {queue_full}x"
        f" in {run.seconds:.1f} s, {warnings} exporter warnings in all"
    )
