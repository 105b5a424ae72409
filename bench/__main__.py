"""``python -m bench [--quick] [--only NAMES] [--variants V,…]``: every benchmark, then one
``bench:`` line.

``--quick`` (CI) runs each benchmark for a moment: it checks that they run, not the figures.
Benchmarks 3 and 4 run their PostgreSQL variants, and benchmark 8 its replicas, on one server
started for them
(:mod:`bench.postgres`), when this machine has PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from contextlib import nullcontext
from importlib import metadata

from bench import (
    outage,
    per_audit,
    per_event,
    per_request,
    per_run,
    per_transcript,
    postgres,
    replicas,
    sdk_calls,
)
from bench.run_worker import VARIANTS

ALL = ("run", "event", "audit", "request", "replicas", "outage", "sdk", "transcript")


def _machine() -> str:
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("opentelemetry-sdk", "fastapi", "openai")
    )
    return (
        f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {versions}, {time.strftime('%Y-%m-%d')}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI-sized: checks they run")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma list of {ALL}")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"benchmark 1's variants to run in rotation, a comma list of {VARIANTS}",
    )
    args = parser.parse_args(argv)
    variants = tuple(args.variants.split(","))
    if not variants or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants: a comma list of {VARIANTS}, got {args.variants!r}")
    only = set(args.only.split(","))
    quick: bool = args.quick
    started = time.monotonic()
    print(f"machine: {_machine()}{' (quick mode)' if quick else ''}", flush=True)
    fields: dict[str, str] = {}
    if "run" in only:
        run = per_run.measure(quick=quick, variants=variants)
        if run.overhead_us is not None:
            fields["run_overhead_us"] = f"{run.overhead_us:.0f}"
        if run.off_overhead_us is not None:
            fields["run_off_us"] = f"{run.off_overhead_us:.0f}"
        sys.stdout.flush()
    if "event" in only:
        event = per_event.measure(quick=quick)
        for key, name in (
            ("event_us", "event"),
            ("naive_us", "naive"),
            ("floor_us", "floor"),
            ("bus_us", "bus"),
        ):
            fields[key] = f"{event[name].median:.2f}"
        sys.stdout.flush()
    needs_postgres = bool({"audit", "request", "replicas"} & only)
    with postgres.server() if needs_postgres else nullcontext(None) as server:
        if "audit" in only:
            audit = per_audit.measure(quick=quick, postgres=server)
            for key, backend in (("audit_sqlite_us", "sqlite"), ("audit_pg_us", "postgresql")):
                durable = audit.durable_us(backend)
                if durable is not None:
                    fields[key] = f"{durable:.0f}"
            sys.stdout.flush()
        if "request" in only:
            request = per_request.measure(quick=quick, postgres=server)
            fields["throughput_ratio"] = f"{request.throughput_ratio:.2f}"
            if request.pg_throughput_ratio is not None:
                fields["pg_throughput_ratio"] = f"{request.pg_throughput_ratio:.2f}"
            if request.db_spans_cost_us is not None:
                fields["db_spans_us"] = f"{request.db_spans_cost_us:.0f}"
            sys.stdout.flush()
        if "replicas" in only:
            spread = replicas.measure(quick=quick, postgres=server)
            if spread is not None:
                fields["decision_p99_ms"] = f"{spread.latency('notify').p99:.1f}"
                fields["decision_poll_p99_ms"] = f"{spread.latency('poll').p99:.0f}"
                worse = min(spread.rps_ratio(flow) for flow in spread.by_flow)
                fields["replicas_rps_ratio"] = f"{worse:.2f}"
            sys.stdout.flush()
    if "outage" in only:
        down = outage.measure(quick=quick)
        fields["outage_p99_ratio"] = f"{down.p99_ratio:.2f}"
        fields["shutdown_s"] = f"{max(down.shutdown_s.values()):.2f}"
        fields["rss_growth_mb"] = f"{down.rss_growth_mb:.1f}"
        fields["dropped_counted"] = "1" if down.dropped_counted else "0"
        sys.stdout.flush()
    if "sdk" in only:
        sdk_calls.measure(quick=quick)
        sys.stdout.flush()
    if "transcript" in only:
        grows = per_transcript.measure(quick=quick)
        fields["transcript_kb_us"] = f"{grows.kb_us['on']:.1f}"
        fields["transcript_kb_ratio"] = f"{grows.kb_ratio:.2f}"
        fields["chunk_us"] = f"{grows.chunk_us['on']:.1f}"
        fields["chunk_ratio"] = f"{grows.chunk_ratio:.1f}"
    print(f"(all benchmarks: {time.monotonic() - started:.0f} s)")
    order = [
        "run_overhead_us",
        "run_off_us",
        "event_us",
        "naive_us",
        "floor_us",
        "bus_us",
        "audit_sqlite_us",
        "audit_pg_us",
        "throughput_ratio",
        "pg_throughput_ratio",
        "db_spans_us",
        "decision_p99_ms",
        "decision_poll_p99_ms",
        "replicas_rps_ratio",
        "outage_p99_ratio",
        "shutdown_s",
        "rss_growth_mb",
        "dropped_counted",
        "transcript_kb_us",
        "transcript_kb_ratio",
        "chunk_us",
        "chunk_ratio",
    ]
    print("bench: " + " ".join(f"{key}={fields.get(key, 'NA')}" for key in order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
