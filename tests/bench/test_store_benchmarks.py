"""bench/ benchmark 3 and the PostgreSQL parts of the benchmarks: every variant of the audit
benchmark runs on both stores and leaves each record stored, shipped and acknowledged; the
server's CPU reading counts its backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from bench.per_audit import BATCH, KINDS, AuditBench
from bench.postgres import server_cpu_s
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
