"""Benchmark 3: one audit event, queued and durable, on SQLite and on PostgreSQL.

One worker process, one event loop, the service's own stores (``open_store``: the SQLite
file, and a PostgreSQL database when the run has a server, :mod:`bench.postgres`), each
with a ``telemetry.AuditLog`` over its outbox, started on that loop as the service starts
its own, its log records going to the layer's batch processor and an exporter that counts
and acknowledges them (:mod:`bench.providers`).

Interleaved in one run (round robin, the order rotating), batches of :data:`BATCH` events
of each variant on each backend. Every batch ends with its records' whole trip: written,
their log records emitted and exported, the exporter's acknowledgements recorded in the
store. The variants:

- ``queued``: ``AuditLog.write`` per event (what an agent run's audited events do), all of
  the batch written in one transaction at its end, as at a request's end;
- ``durable``: a HITL decision as ``hitl.py`` records it: ``record_decision(...,
  audit=(record,))``, the approval's compare-and-set and its audit record in one
  transaction per event, then ``AuditLog.committed`` (shipping);
- ``decision``: the same decision without an audit record: ``durable - decision`` is what
  the record adds to the decision's commit;
- ``bare``: the floor, a single-row insert committed per event without the store or the
  layer: stdlib ``sqlite3`` on a file with the store's pragmas (WAL,
  ``synchronous=NORMAL``); on PostgreSQL one psycopg connection in autocommit.

Per event: the CPU of this process (``time.process_time``: every thread, aiosqlite's and
the batch processor's included), the CPU of the PostgreSQL server's processes (its
backends and WAL writer, :func:`bench.postgres.server_cpu_s`), and the wall-clock time.
Then events/s with 1, 4 and 16 writers at once (coroutines on the loop), ``queued`` and
``durable``, each backend: a queued writer flushes after each batch of its own (a request's
end), and the clock stops once everything written is shipped and acknowledged.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from opentelemetry.trace import SpanContext, TraceFlags

import telemetry
from agent_runtime.store import ApprovalRecord, SessionRecord, Store, open_store
from bench.postgres import PostgresServer, server_cpu_s
from bench.proc import Worker, serve_commands
from bench.providers import Recording, recording_providers
from bench.stats import Summary, summarize

BATCH = 50
CONTEXT = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(1))
KINDS = ("queued", "durable", "decision", "bare")
RATE_KINDS = ("queued", "durable")
WRITERS = (1, 4, 16)
SESSION = "bench-audit"
BACKENDS = ("sqlite", "postgresql")
_URL_ENV, _PID_ENV = "BENCH_POSTGRES_URL", "BENCH_POSTGRES_PID"
_LABELS = {
    "queued": "queued (AuditLog.write)",
    "durable": "durable (decision + record)",
    "decision": "decision, no record",
    "bare": "bare insert + commit",
}
_BARE_TABLE = "CREATE TABLE bare_rows (id TEXT PRIMARY KEY, ts DOUBLE PRECISION, doc TEXT)"


def _event(call_id: str) -> telemetry.HITLDecisionMade:
    return telemetry.HITLDecisionMade(
        tool="write_file",
        call_id=call_id,
        decision="APPROVE",
        wait_s=0.2,
        original_args={"path": "sort.py"},
        session_id=SESSION,
    )


class Backend:
    """One store, its audit trail and its floor, and what each variant does on them."""

    def __init__(
        self,
        name: str,
        store: Store,
        floor: Callable[[], Awaitable[None]],
        server_pid: int | None,
    ) -> None:
        self.name = name
        self.store = store
        self.floor = floor
        self.server_pid = server_pid
        self.recording: Recording = recording_providers()
        self.audit = telemetry.AuditLog(
            store,
            logger=self.recording.logger_provider.get_logger(telemetry.names.AUDIT_SCOPE),
            delivery=self.recording.providers.audit_delivery,
        )
        self.settings = telemetry.TelemetrySettings()
        self.records = 0
        """Audit records written so far (each must be shipped and acknowledged)."""
        self._ids = itertools.count()

    def server_cpu(self) -> float:
        return server_cpu_s(self.server_pid) if self.server_pid is not None else 0.0

    async def pending(self, n: int) -> list[str]:
        """``n`` approvals waiting for a decision (made before the clock starts)."""
        now = time.time()
        calls = [f"call-{self.name}-{next(self._ids)}" for _ in range(n)]
        for first in range(0, n, 16):
            await asyncio.gather(
                *(
                    self.store.insert_approval(
                        ApprovalRecord(
                            call_id=call_id,
                            session_id=SESSION,
                            tool="write_file",
                            arguments={"path": "sort.py"},
                            agent="coder",
                            reason="writes a file",
                            timeout_s=300.0,
                            requested_at=now,
                            deadline=now + 300.0,
                            trace_id=f"{CONTEXT.trace_id:032x}",
                            span_id=f"{CONTEXT.span_id:016x}",
                            trace_flags=1,
                        )
                    )
                    for call_id in calls[first : first + 16]
                )
            )
        return calls

    async def ship(self) -> None:
        """Write what is queued and emit the log records of everything written; export
        them (the exporter acknowledges); record the acknowledgements in the store."""
        await self.audit.flush()
        self.recording.logger_provider.force_flush()
        await self.audit.flush()

    async def queued(self, n: int) -> None:
        """``n`` queued records (no shipping: the caller ships)."""
        for _ in range(n):
            event = _event(f"queued-{next(self._ids)}")
            self.audit.write(
                event,
                event.attributes(self.settings),
                CONTEXT,
                summary=event.summary(),
                details=event.audit_details(self.settings),
            )
        self.records += n

    async def decide(self, calls: list[str], *, audited: bool) -> None:
        """Decide each call in its own transaction, with its audit record when
        ``audited`` (then shipped by the caller)."""
        for call_id in calls:
            event = _event(call_id)
            record = (
                self.audit.build(
                    event,
                    event.attributes(self.settings),
                    CONTEXT,
                    summary=event.summary(),
                    details=event.audit_details(self.settings),
                )
                if audited
                else None
            )
            won = await self.store.record_decision(
                call_id,
                decision="APPROVE",
                arguments=None,
                feedback=None,
                outcome=telemetry.names.OUTCOME_DECIDED,
                decided_at=time.time(),
                audit=() if record is None else (record,),
            )
            if not won:
                raise AssertionError(f"{call_id} was decided already")
            if record is not None:
                self.audit.committed([record])
                self.records += 1

    async def batch(self, kind: str, calls: list[str]) -> None:
        """One timed batch of ``kind`` (``calls``: its pending approvals)."""
        if kind == "queued":
            await self.queued(BATCH)
            await self.ship()
        elif kind == "durable":
            await self.decide(calls, audited=True)
            await self.ship()
        elif kind == "decision":
            await self.decide(calls, audited=False)
        else:
            for _ in range(BATCH):
                await self.floor()

    async def timed(self, kind: str) -> tuple[float, float, float]:
        """One batch of ``kind``: µs per event of this process's CPU, of the database
        server's CPU, and of wall-clock time."""
        calls = await self.pending(BATCH) if kind in ("durable", "decision") else []
        server = self.server_cpu()
        wall, cpu = time.perf_counter_ns(), time.process_time_ns()
        await self.batch(kind, calls)
        cpu, wall = time.process_time_ns() - cpu, time.perf_counter_ns() - wall
        server = self.server_cpu() - server
        return cpu / BATCH / 1e3, server / BATCH * 1e6, wall / BATCH / 1e3

    async def rate(self, kind: str, writers: int, per_writer: int) -> float:
        """Events per second, ``writers`` at once, each writing ``per_writer`` events."""
        batches = max(1, per_writer // BATCH)
        calls = await self.pending(writers * per_writer) if kind == "durable" else []

        async def queued_writer() -> None:
            for _ in range(batches):
                await self.queued(BATCH)
                await self.audit.flush()

        async def durable_writer(mine: list[str]) -> None:
            await self.decide(mine, audited=True)

        start = time.perf_counter()
        if kind == "queued":
            await asyncio.gather(*(queued_writer() for _ in range(writers)))
            events = writers * batches * BATCH
        else:
            shares = [calls[i * per_writer : (i + 1) * per_writer] for i in range(writers)]
            await asyncio.gather(*(durable_writer(mine) for mine in shares))
            events = len(calls)
        await self.ship()
        return events / (time.perf_counter() - start)

    async def check(self) -> dict[str, int]:
        """Every record written is in the store, was shipped once and acknowledged."""
        await self.ship()
        stored = await self.store.query_audit(
            session_id=SESSION, event_type=None, limit=self.records + 1
        )
        unshipped = await self.store.count_unshipped()
        exported = self.recording.logs.count
        if len(stored) != self.records or exported != self.records or unshipped:
            raise AssertionError(
                f"{self.name}: {self.records} audit records written, {len(stored)} stored, "
                f"{exported} log records exported, {unshipped} not acknowledged"
            )
        return {"records": self.records, "stored": len(stored), "exported": exported}


class AuditBench:
    """Every backend of the run, measured in rounds."""

    def __init__(
        self, backends: list[Backend], closers: list[Callable[[], Awaitable[None]]]
    ) -> None:
        self.backends = backends
        self._closers = closers

    @classmethod
    async def open(
        cls, folder: Path, postgres_url: str | None, server_pid: int | None
    ) -> AuditBench:
        sqlite_store = open_store(None, folder)
        bare_db = sqlite3.connect(folder / "bare.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
            bare_db.execute(f"PRAGMA {pragma}")
        bare_db.execute(_BARE_TABLE)

        async def close_sqlite_floor() -> None:
            bare_db.close()

        closers: list[Callable[[], Awaitable[None]]] = [close_sqlite_floor]

        async def sqlite_floor() -> None:
            bare_db.execute(
                "INSERT INTO bare_rows VALUES (?, ?, ?)", (uuid.uuid4().hex, time.time(), "{}")
            )

        stores: list[tuple[str, Store, Callable[[], Awaitable[None]], int | None]] = [
            ("sqlite", sqlite_store, sqlite_floor, None)
        ]
        if postgres_url is not None:
            conn = await psycopg.AsyncConnection.connect(postgres_url, autocommit=True)
            await conn.execute(_BARE_TABLE)
            closers.append(conn.close)

            async def postgres_floor() -> None:
                await conn.execute(
                    "INSERT INTO bare_rows VALUES (%s, %s, %s)",
                    (uuid.uuid4().hex, time.time(), "{}"),
                )

            stores.append(
                ("postgresql", open_store(postgres_url, folder), postgres_floor, server_pid)
            )
        backends = []
        for name, store, floor, pid in stores:
            await store.open()
            await store.insert_session(SessionRecord(SESSION, time.time()))
            backend = Backend(name, store, floor, pid)
            backend.audit.start()
            backends.append(backend)
        return cls(backends, closers)

    async def run(
        self, rounds: int, per_writer: int, writers: tuple[int, ...] = WRITERS
    ) -> dict[str, Any]:
        variants = [(b, kind) for b in self.backends for kind in KINDS]
        samples: dict[str, list[tuple[float, float, float]]] = {
            f"{b.name}/{kind}": [] for b, kind in variants
        }
        for i in range(rounds):
            shift = i % len(variants)
            for backend, kind in variants[shift:] + variants[:shift]:
                samples[f"{backend.name}/{kind}"].append(await backend.timed(kind))
        rates: dict[str, float] = {}
        for n in writers:
            for backend in self.backends:
                for kind in RATE_KINDS:
                    rates[f"{backend.name}/{kind}@{n}"] = await backend.rate(kind, n, per_writer)
        checks = {b.name: await b.check() for b in self.backends}
        return {"samples": samples, "rates": rates, "checks": checks}

    async def close(self) -> None:
        for backend in self.backends:
            await backend.audit.aclose()
            await backend.store.close()
        for close in self._closers:
            await close()


@dataclass(frozen=True, slots=True)
class AuditResult:
    """Per variant (``backend/kind``): CPU here, database server CPU, their sum, wall (µs
    per event); events/s per ``backend/kind@writers``."""

    cpu: dict[str, Summary]
    server: dict[str, Summary]
    total: dict[str, Summary]
    wall: dict[str, Summary]
    rates: dict[str, float]

    def durable_us(self, backend: str) -> float | None:
        """CPU per durable event (this process and the database server), median."""
        found = self.total.get(f"{backend}/durable")
        return found.median if found is not None else None


def measure(*, quick: bool, postgres: PostgresServer | None) -> AuditResult:
    env: dict[str, str] = {}
    if postgres is not None:
        postgres.create_database("bench_audit")
        env = {_URL_ENV: postgres.url("bench_audit"), _PID_ENV: str(postgres.process.pid)}
    worker = Worker("bench.per_audit", env=env)
    try:
        answer = worker.ask("2 50" if quick else "40 200")
    finally:
        worker.close()
    samples: dict[str, list[list[float]]] = answer["samples"]
    result = AuditResult(
        cpu={k: summarize([s[0] for s in v]) for k, v in samples.items()},
        server={k: summarize([s[1] for s in v]) for k, v in samples.items()},
        total={k: summarize([s[0] + s[1] for s in v]) for k, v in samples.items()},
        wall={k: summarize([s[2] for s in v]) for k, v in samples.items()},
        rates=answer["rates"],
    )
    _print(result, postgres)
    return result


def _print(result: AuditResult, postgres: PostgresServer | None) -> None:
    print(
        f"3. per audit event (HITLDecisionMade), us per event, batches of {BATCH}, interleaved;"
        " each batch written, shipped and acknowledged (medians, CPU spread p10-p90)"
    )
    print(f"  {'':<42}{'CPU here':>18}{'+ db server':>13}{'= CPU':>9}{'wall':>10}")
    names = [name for name in BACKENDS if f"{name}/queued" in result.cpu]
    for name in names:
        for kind in KINDS:
            key = f"{name}/{kind}"
            cpu = result.cpu[key]
            print(
                f"  {name + ' ' + _LABELS[kind]:<42}{cpu.median:9.1f} ±{cpu.spread * 50:4.0f}%"
                f"{result.server[key].median:13.1f}{result.total[key].median:9.1f}"
                f"{result.wall[key].median:10.1f}"
            )
    for writers in WRITERS:
        cells = "   ".join(
            f"{name} {kind} {result.rates[f'{name}/{kind}@{writers}']:7.0f}"
            for name in names
            for kind in RATE_KINDS
        )
        print(f"  {writers:>2} writers, events/s: {cells}")
    if postgres is None:
        print("  (PostgreSQL rows skipped: no PostgreSQL installation; deploy/ci-prereqs.sh)")
    else:
        print(
            "  PostgreSQL: its durable defaults (fsync, synchronous_commit, full_page_writes"
            " on: a commit waits for its WAL on disk); SQLite: WAL, synchronous=NORMAL (a"
            " commit survives the process, not the machine)"
        )


def main() -> None:
    url = os.environ.get(_URL_ENV)
    pid = int(os.environ[_PID_ENV]) if url is not None else None
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        bench: AuditBench = loop.run_until_complete(AuditBench.open(Path(folder), url, pid))

        def handle(command: str) -> dict[str, Any]:
            rounds, per_writer = (int(x) for x in command.split())
            return loop.run_until_complete(bench.run(rounds, per_writer))

        try:
            serve_commands(handle, {"ready": True})
        finally:
            loop.run_until_complete(bench.close())
            loop.close()


if __name__ == "__main__":
    main()
