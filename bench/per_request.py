"""Benchmark 4: per request end to end. The service under uvicorn in its own process, loaded
in alternating phases by ``bench.loadgen`` in another, every variant running at once:

- ``on``: telemetry fully on (OTLP/HTTP to a local receiver that answers 200; FastAPI
  server spans, the agent/chat/tool spans, metrics, audit), the embedded SQLite store;
- ``off``: telemetry off (``OTEL_SDK_DISABLED=true``), SQLite;
- ``pg``: as ``on``, the store on PostgreSQL (``DATABASE_URL``, a database of its own on the
  run's server, :mod:`bench.postgres`), with the database client spans (the default);
- ``pg-nodb``: as ``pg`` with ``AGENT_RUNTIME_DB_SPANS=false``: ``pg - pg-nodb`` is what
  the database client spans cost.

The PostgreSQL variants run when the run has a server; their database server's CPU is
read per phase beside the service's, and each sends its spans to a counting receiver of
its own, so the run shows how many database spans a request made (none for ``pg-nodb``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.load import PhaseStats, interleave
from bench.postgres import PostgresServer
from bench.proc import Worker
from bench.service import Receiver, Service, telemetry_env

FLOWS = ("ask", "coder")
LABELS = {
    "on": "sqlite, telemetry on",
    "off": "sqlite, telemetry off",
    "pg": "postgresql, on",
    "pg-nodb": "postgresql, no db spans",
}


@dataclass(frozen=True, slots=True)
class RequestResult:
    by_flow: dict[str, dict[str, PhaseStats]]
    span_counts: dict[str, dict[str, int]]
    """Per PostgreSQL variant: what its receiver counted (:func:`bench.receiver.count_spans`)."""

    def ratio(self, flow: str, subject: str = "on", baseline: str = "off") -> float:
        """Requests/s of ``subject`` over ``baseline``'s (medians of their phases)."""
        on, off = self.by_flow[flow][subject], self.by_flow[flow][baseline]
        return on.rps_summary.median / off.rps_summary.median if off.rps else 0.0

    @property
    def throughput_ratio(self) -> float:
        """Telemetry on / off, the worse of the two flows."""
        return min(self.ratio(flow) for flow in FLOWS)

    @property
    def postgres(self) -> bool:
        return all("pg" in variants for variants in self.by_flow.values())

    @property
    def pg_throughput_ratio(self) -> float | None:
        """PostgreSQL / SQLite requests/s, telemetry on, the worse flow."""
        return min(self.ratio(f, "pg", "on") for f in FLOWS) if self.postgres else None

    def db_spans_us(self, flow: str) -> float:
        """The database client spans' cost per request: the service's CPU with them minus
        without, the median of the differences between phases of the same round."""
        with_spans = self.by_flow[flow]["pg"].cpu_us_per_request
        without = self.by_flow[flow]["pg-nodb"].cpu_us_per_request
        return statistics.median(a - b for a, b in zip(with_spans, without, strict=False))

    @property
    def db_spans_cost_us(self) -> float | None:
        """:meth:`db_spans_us`, the worse flow."""
        return max(self.db_spans_us(f) for f in FLOWS) if self.postgres else None


def measure(
    *, quick: bool, postgres: PostgresServer | None = None, concurrency: int = 8
) -> RequestResult:
    rounds, seconds, cap = (1, 1.0, 20) if quick else (4, 4.0, 100_000)
    receivers = {"on": Receiver("ok")}
    services: dict[str, Service] = {}
    loadgen = Worker("bench.loadgen")
    try:
        services["on"] = Service("on", telemetry_env(receivers["on"].port))
        services["off"] = Service("off", telemetry_env(None))
        if postgres is not None:
            for name, spans in (("pg", "true"), ("pg-nodb", "false")):
                database = f"bench_request_{name.replace('-', '_')}"
                postgres.create_database(database)
                receivers[name] = Receiver("count")
                env = telemetry_env(
                    receivers[name].port,
                    DATABASE_URL=postgres.url(database),
                    AGENT_RUNTIME_DB_SPANS=spans,
                )
                services[name] = Service(name, env, database_pid=postgres.process.pid)
        by_flow = {
            flow: interleave(
                loadgen,
                services,
                flow,
                rounds=rounds,
                concurrency=concurrency,
                seconds=seconds,
                cap=cap,
            )
            for flow in FLOWS
        }
        for service in services.values():
            service.close()  # its telemetry flushed: every span is at its receiver
        counts = {name: receivers[name].counts() for name in services if name.startswith("pg")}
    finally:
        loadgen.close()
        for service in services.values():
            service.close()
        for receiver in receivers.values():
            receiver.close()
    result = RequestResult(by_flow, counts)
    _print(result, concurrency)
    return result


def _print(result: RequestResult, concurrency: int) -> None:
    print(f"4. per request end to end ({concurrency} concurrent users, closed loop)")
    for flow in FLOWS:
        for variant, stats in result.by_flow[flow].items():
            print(stats.line(f"{flow} {LABELS[variant]}"))
        print(f"  {flow}: throughput on/off = {result.ratio(flow):.2f}x (goal >= 0.80x)")
        if result.postgres:
            pg, on = result.by_flow[flow]["pg"], result.by_flow[flow]["on"]
            print(
                f"  {flow}: postgresql/sqlite = {result.ratio(flow, 'pg', 'on'):.2f}x req/s,"
                f" p99 {pg.p(0.99):.0f} against {on.p(0.99):.0f} ms;"
                f" db spans {result.db_spans_us(flow):+.0f} us/req of service CPU,"
                f" {result.ratio(flow, 'pg', 'pg-nodb'):.2f}x req/s"
            )
    if not result.postgres:
        print("  (PostgreSQL rows skipped: no PostgreSQL installation; deploy/ci-prereqs.sh)")
    for name, counts in result.span_counts.items():
        per = counts["db_spans"] / counts["streams"] if counts["streams"] else 0.0
        print(
            f"  {name}: {counts['db_spans']} database client spans of {counts['spans']}, over"
            f" {counts['streams']} streamed requests (both flows, warm-ups included):"
            f" {per:.1f} per request"
        )
    pg_spans = result.span_counts.get("pg", {}).get("db_spans")
    if pg_spans == 0 or result.span_counts.get("pg-nodb", {}).get("db_spans"):
        raise AssertionError(f"database client spans where not expected: {result.span_counts}")
