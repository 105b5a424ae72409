"""Interleaved load phases against several services: requests/s, latency, server CPU."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bench.proc import Worker
from bench.stats import Summary, quantile, summarize


class Target(Protocol):
    """What a phase loads: a port to send requests to, and the CPU spent behind it (a
    :class:`bench.service.Service`, or replicas behind a balancer)."""

    @property
    def port(self) -> int: ...

    def cpu_s(self) -> float: ...

    def database_cpu_s(self) -> float | None: ...


@dataclass(slots=True)
class PhaseStats:
    """Everything measured for one service over its phases."""

    rps: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    cpu_us_per_request: list[float] = field(default_factory=list)
    db_cpu_us_per_request: list[float] = field(default_factory=list)
    """The database server's CPU (PostgreSQL; empty on SQLite, inside the service)."""
    errors: int = 0
    requests: int = 0

    def p(self, q: float) -> float:
        return quantile(self.latencies_ms, q)

    @property
    def rps_summary(self) -> Summary:
        return summarize(self.rps)

    @property
    def cpu_summary(self) -> Summary:
        return summarize(self.cpu_us_per_request)

    def line(self, label: str) -> str:
        rps, cpu = self.rps_summary, self.cpu_summary
        database = (
            f" + db {summarize(self.db_cpu_us_per_request).median:6.0f}"
            if self.db_cpu_us_per_request
            else ""
        )
        return (
            f"  {label:<24} {rps.median:7.1f} req/s (±{rps.spread * 50:4.1f}%)"
            f"  p50 {self.p(0.5):7.1f} ms  p99 {self.p(0.99):7.1f} ms"
            f"  server CPU {cpu.median:7.0f}{database} us/req"
            f"  n={self.requests} errors={self.errors}"
        )


def run_phase(
    loadgen: Worker, service: Target, flow: str, concurrency: int, seconds: float, cap: int
) -> PhaseStats:
    stats = PhaseStats()
    add_phase(stats, loadgen, service, flow, concurrency, seconds, cap)
    return stats


def add_phase(
    stats: PhaseStats,
    loadgen: Worker,
    service: Target,
    flow: str,
    concurrency: int,
    seconds: float,
    cap: int,
) -> None:
    cpu_before, db_before = service.cpu_s(), service.database_cpu_s()
    answer = loadgen.ask(f"{service.port} {flow} {concurrency} {seconds} {cap}")
    cpu_used = service.cpu_s() - cpu_before
    db_after = service.database_cpu_s()
    done = len(answer["latencies_ms"])
    stats.requests += done
    stats.errors += answer["n_errors"]
    stats.latencies_ms.extend(answer["latencies_ms"])
    if done:
        stats.rps.append(done / answer["elapsed_s"])
        stats.cpu_us_per_request.append(cpu_used / done * 1e6)
        if db_before is not None and db_after is not None:
            stats.db_cpu_us_per_request.append((db_after - db_before) / done * 1e6)


def interleave(
    loadgen: Worker,
    services: Mapping[str, Target],
    flow: str,
    *,
    rounds: int,
    concurrency: int,
    seconds: float,
    cap: int,
) -> dict[str, PhaseStats]:
    """``rounds`` phases per service, the order rotating each round; one warm-up each."""
    names = list(services)
    for name in names:
        run_phase(loadgen, services[name], flow, concurrency, min(seconds, 1.0), cap)
    results = {name: PhaseStats() for name in names}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            add_phase(results[name], loadgen, services[name], flow, concurrency, seconds, cap)
    return results
