"""bench/ benchmark 3 and the PostgreSQL parts of the benchmarks: every variant of the audit
benchmark runs on both stores and leaves each record stored, shipped and acknowledged; the
server's CPU reading counts its backends; the counting receiver counts what the service
sends (benchmark 4's database spans)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from bench.per_audit import BATCH, KINDS, AuditBench
from bench.postgres import server_cpu_s
from bench.receiver import STREAM_ROUTE, answering
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from scripts.processes import PostgresServer


async def _bench(tmp_path: Path, url: str | None, pid: int | None) -> dict[str, Any]:
    bench = await AuditBench.open(tmp_path, url, pid)
    try:
        return await bench.run(rounds=1, per_writer=BATCH, writers=(1, 3))
    finally:
        await bench.close()


def _expected_records(writers: tuple[int, ...]) -> int:
    """One batch of queued and one of durable events, then each writer count's queued and
    durable events (``BATCH`` per writer each)."""
    return 2 * BATCH + sum(2 * n * BATCH for n in writers)


async def test_every_variant_runs_on_sqlite_and_every_record_is_stored_shipped_acknowledged(
    tmp_path: Path,
) -> None:
    answer = await _bench(tmp_path, None, None)
    assert set(answer["samples"]) == {f"sqlite/{kind}" for kind in KINDS}
    expected = _expected_records((1, 3))
    assert answer["checks"] == {
        "sqlite": {"records": expected, "stored": expected, "exported": expected}
    }
    rates = answer["rates"]
    assert set(rates) == {f"sqlite/{kind}@{n}" for kind in ("queued", "durable") for n in (1, 3)}
    assert all(rate > 0 for rate in rates.values())


async def test_the_postgresql_variants_run_beside_sqlite_and_count_the_servers_cpu(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    answer = await _bench(tmp_path, postgres_url, postgres_server.process.pid)
    samples = answer["samples"]
    assert set(samples) == {f"{b}/{kind}" for b in ("sqlite", "postgresql") for kind in KINDS}
    expected = _expected_records((1, 3))
    assert answer["checks"]["postgresql"]["stored"] == expected
    # [CPU here, database server CPU, wall] per event: the server works for PostgreSQL only
    assert all(sample[1] > 0 for sample in samples["postgresql/durable"])
    assert all(sample[1] == 0 for sample in samples["sqlite/durable"])


async def test_the_servers_cpu_counts_its_backends_not_only_the_postmaster(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    postmaster = postgres_server.process.pid
    own = Path(f"/proc/{postmaster}/schedstat")
    before, own_before = server_cpu_s(postmaster), int(own.read_text().split()[0])
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        await conn.execute("SELECT count(*) FROM generate_series(1, 3000000)")
        spent = server_cpu_s(postmaster) - before
    assert spent > 0.05
    assert (int(own.read_text().split()[0]) - own_before) / 1e9 < spent / 2


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[int, list[bytes]]]:
    kept: list[bytes] = []
    server = await asyncio.start_server(answering(kept), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], kept
    finally:
        server.close()
        await server.wait_closed()


def _export(port: int, compression: Compression) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-test"}))
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{port}/v1/traces", compression=compression
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(f"POST {STREAM_ROUTE}", kind=SpanKind.SERVER):
        with tracer.start_as_current_span(
            "SELECT", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}
        ):
            pass
        with tracer.start_as_current_span("chat scripted", kind=SpanKind.CLIENT):
            pass
    provider.shutdown()


def _counts(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/counts", timeout=10) as got:
        counts: dict[str, int] = json.load(got)
    return counts


async def test_the_counting_receiver_counts_database_spans_and_streamed_requests(
    receiver: tuple[int, list[bytes]],
) -> None:
    port, kept = receiver
    for compression in (Compression.NoCompression, Compression.Gzip):
        await asyncio.to_thread(_export, port, compression)
    assert len(kept) == 6  # one export per span (simple processor)
    counts = await asyncio.to_thread(_counts, port)
    assert counts == {"spans": 6, "db_spans": 2, "streams": 2}
