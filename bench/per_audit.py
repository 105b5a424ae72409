"""Benchmark 3: the audit path, ``AuditLog.write`` (SQLite WAL outbox + an OTel log record
into a batch processor), per event and under concurrency.

Interleaved in one run, CPU per event (``time.process_time``: every thread of the worker, so
the audit writer thread's commits count as much as the caller's work):
- ``write`` (group commit): records queued, committed by the writer thread; every timed
  batch ends with ``flush()`` so all of its commits fall inside the measurement;
- ``write(durable=True)``: committed on the caller's thread before it returns, one commit
  per event when nothing else is queued (a HITL decision, a session delete); the log
  records, which the writer thread emits, are emitted by a flush at the end of the batch;
- a bare single-row SQLite insert committed per event (WAL, ``synchronous=NORMAL``): what
  a commit costs without the audit layer.
Then events/s with 1, 4 and 16 threads writing at once (the group-committed ones flushed
before the clock stops).
"""

from __future__ import annotations

import itertools
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from opentelemetry.trace import SpanContext, TraceFlags

import telemetry
from bench.proc import Worker, serve_commands
from bench.providers import recording_providers
from bench.stats import Summary, row, summarize
from telemetry.audit import COMMIT_INTERVAL_S

BATCH = 50
CONTEXT = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(1))
NAMES = ("write", "durable", "bare")
THREADS = (1, 4, 16)


def _event(i: int) -> telemetry.HITLDecisionMade:
    return telemetry.HITLDecisionMade(
        tool="write_file", call_id=f"call_{i}", decision="APPROVE", wait_s=0.2, session_id="s1"
    )


class AuditBench:
    def __init__(self, folder: Path) -> None:
        self.recording = recording_providers()
        logger = self.recording.logger_provider.get_logger("agent_runtime.audit")
        self.audit = telemetry.AuditLog(folder / "audit.db", logger=logger)
        self.settings = telemetry.TelemetrySettings()
        self.bare_db = sqlite3.connect(
            folder / "bare.db", check_same_thread=False, isolation_level=None
        )
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
            self.bare_db.execute(f"PRAGMA {pragma}")
        self.bare_db.execute("CREATE TABLE r (id TEXT PRIMARY KEY, ts REAL, attributes TEXT)")
        self.bare_lock = threading.Lock()
        self.ids = itertools.count()

    def _write(self, n: int, *, durable: bool) -> None:
        for _ in range(n):
            event = _event(next(self.ids))
            self.audit.write(event, event.attributes(self.settings), CONTEXT, durable=durable)

    def write(self, n: int) -> None:
        """``n`` group-committed writes, then a flush: all of them committed on return."""
        self._write(n, durable=False)
        self.audit.flush()

    def durable(self, n: int) -> None:
        """``n`` durable writes, then a flush: their log records, which the writer thread
        emits, are emitted on return."""
        self._write(n, durable=True)
        self.audit.flush()

    def bare(self, n: int) -> None:
        for _ in range(n):
            with self.bare_lock:
                self.bare_db.execute(
                    "INSERT INTO r VALUES (?, ?, ?)", (uuid.uuid4().hex, time.time(), "{}")
                )

    def timed(self, name: str) -> float:
        """CPU (all threads) per event of one batch of ``name``, in µs."""
        start = time.process_time_ns()
        getattr(self, name)(BATCH)
        return (time.process_time_ns() - start) / BATCH / 1e3

    def concurrent(self, name: str, threads: int, per_thread: int) -> float:
        """Events per second with ``threads`` writers, each writing ``per_thread`` events."""
        batches = max(1, per_thread // BATCH)

        def repeat() -> None:
            for _ in range(batches):
                getattr(self, name)(BATCH)

        workers = [threading.Thread(target=repeat) for _ in range(threads)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return threads * batches * BATCH / (time.perf_counter() - start)

    def handle(self, command: str) -> dict[str, Any]:
        rounds, per_thread = (int(x) for x in command.split())
        samples: dict[str, list[float]] = {name: [] for name in NAMES}
        for i in range(rounds):
            for name in NAMES[i % 3 :] + NAMES[: i % 3]:
                samples[name].append(self.timed(name))
        rates: dict[str, float] = {}
        for threads in THREADS:
            for name in ("write", "durable"):
                rates[f"{name}@{threads}"] = self.concurrent(name, threads, per_thread)
        self.recording.flush()
        return {"samples": samples, "rates": rates, "logs": self.recording.logs.count}


def measure(*, quick: bool) -> dict[str, Summary]:
    worker = Worker("bench.per_audit")
    try:
        answer = worker.ask("4 20" if quick else "120 400")
    finally:
        worker.close()
    result = {name: summarize(values) for name, values in answer["samples"].items()}
    print(
        f"3. per audit event (HITLDecisionMade), CPU us per event (all threads), batches of {BATCH}"
    )
    print(row("AuditLog.write (group commit)", result["write"]))
    print(row("AuditLog.write(durable=True)", result["durable"]))
    print(row("bare SQLite insert + commit", result["bare"]))
    rates = answer["rates"]
    for threads in THREADS:
        print(
            f"  {threads:>2} threads: write {rates[f'write@{threads}']:9.0f} events/s"
            f"   durable {rates[f'durable@{threads}']:9.0f} events/s"
        )
    print(
        "  batching: queued records are committed together at the end of their request"
        " (here each batch's flush), by a durable write with everything queued before it, or"
        f" by the writer thread within {COMMIT_INTERVAL_S:g} s; the writer thread emits the"
        " log records of what was committed (here each batch's flush)."
    )
    return result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        bench = AuditBench(Path(folder))
        try:
            serve_commands(bench.handle, {"ready": True})
        finally:
            bench.audit.close()


if __name__ == "__main__":
    main()
