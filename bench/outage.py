"""Benchmark 5: the OTLP endpoint down. Same load as benchmark 4 (coder flow) against three
services at once, phases interleaved (8 rounds of 5 s): endpoint up (answers 200), closed
(nothing listens), stalled (accepts, never answers). Then: time from SIGTERM to exit with
the endpoint unreachable; RSS before/after 10 minutes' worth of requests at a nominal
5 req/s, played compressed (audit re-send every 1 s instead of 10 s, so its cycles are
compressed too); and ``agent_runtime.telemetry.dropped`` as that service reports it (console
metric exporter beside OTLP, every second).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.load import PhaseStats, interleave, run_phase
from bench.proc import Worker
from bench.service import Receiver, Service, free_port, telemetry_env

NOMINAL_RPS = 5
SPANS_PER_CODER_REQUEST = 10  # 8 agent spans + 2 SERVER spans (stream, approval)


@dataclass(frozen=True, slots=True)
class OutageResult:
    phases: dict[str, PhaseStats]
    shutdown_s: dict[str, float]
    rss_before_mb: float
    rss_after_mb: float
    dropped: dict[str, float]
    spans_created: int

    @property
    def p99_ratio(self) -> float:
        up = self.phases["up"].p(0.99)
        return max(self.phases[k].p(0.99) for k in ("closed", "stalled")) / up if up else 0.0

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_after_mb - self.rss_before_mb

    @property
    def dropped_counted(self) -> bool:
        return self.dropped.get("traces", 0.0) > 0


def _metrics_env(port: int, **extra: str) -> dict[str, str]:
    return telemetry_env(
        port, OTEL_METRICS_EXPORTER="otlp,console", OTEL_METRIC_EXPORT_INTERVAL="1000", **extra
    )


def measure(*, quick: bool, concurrency: int = 8) -> OutageResult:
    rounds, seconds = (1, 1.0) if quick else (8, 5.0)
    events_requests = 30 if quick else NOMINAL_RPS * 600
    up, stall = Receiver("ok"), Receiver("stall")
    closed_port = free_port()
    loadgen = Worker("bench.loadgen")
    services: dict[str, Service] = {}
    shutdown: dict[str, float] = {}
    try:
        # The latency comparison runs without the console metric exporter (a JSON dump of
        # every metric each second, a bench instrument, not the subject); the RSS service
        # below has it, to report what it dropped.
        services["up"] = Service("up", telemetry_env(up.port))
        services["closed"] = Service("closed", telemetry_env(closed_port))
        services["stalled"] = Service("stalled", telemetry_env(stall.port))
        phases = interleave(
            loadgen,
            services,
            "coder",
            rounds=rounds,
            concurrency=concurrency,
            seconds=seconds,
            cap=100_000,
        )
        for name in ("closed", "stalled", "up"):
            shutdown[name] = services.pop(name).stop()
        rss_service = Service(
            "rss", _metrics_env(closed_port, AGENT_RUNTIME_AUDIT_RESEND_INTERVAL_S="1")
        )
        services["rss"] = rss_service
        run_phase(loadgen, rss_service, "coder", concurrency, 2.0, 20)  # warm
        rss_before = rss_service.rss_mb()
        played = run_phase(loadgen, rss_service, "coder", concurrency, 600.0, events_requests)
        time.sleep(2.5)  # one more resend cycle and metric export
        rss_after = rss_service.rss_mb()
        dropped = rss_service.dropped()
        shutdown["rss (closed)"] = services.pop("rss").stop()
    finally:
        loadgen.close()
        for service in services.values():
            service.close()
        up.close()
        stall.close()
    created = (played.requests + 20) * SPANS_PER_CODER_REQUEST
    result = OutageResult(phases, shutdown, rss_before, rss_after, dropped, created)
    print(f"5. exporter outage (coder flow, {concurrency} concurrent users)")
    for name, stats in phases.items():
        print(stats.line(f"endpoint {name}"))
    print(f"  p99 (worse of closed/stalled) / p99 up = {result.p99_ratio:.2f}x (goal <= 1.10x)")
    print(
        "  shutdown SIGTERM -> exit: "
        + ", ".join(f"{name} {s:.2f} s" for name, s in shutdown.items())
        + " (goal <= 5 s)"
    )
    print(
        f"  RSS over {played.requests} requests (= 10 min at {NOMINAL_RPS} req/s, endpoint"
        f" closed, {played.requests / sum(played.rps) if played.rps else 0:.0f} s):"
        f" {rss_before:.1f} -> {rss_after:.1f} MB ({result.rss_growth_mb:+.1f} MB, goal <= 50)"
    )
    print(
        f"  dropped counted by the service: {dropped or 'nothing reported'};"
        f" spans created ~{created}"
    )
    return result
