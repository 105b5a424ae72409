"""Benchmark 3: the durable audit path, ``AuditLog.write`` (SQLite WAL insert committed per
event + an OTel log record into a batch processor), per event and under concurrency.

Baselines in the same run: the bare SQLite autocommit insert (what durability alone costs)
and a group-commit prototype (one transaction per batch of records, the proposal), so the
table shows what batching would buy.
"""

from __future__ import annotations

import json
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

BATCH = 50
CONTEXT = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(1))


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
        self.raw = sqlite3.connect(folder / "raw.db", check_same_thread=False, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
            self.raw.execute(f"PRAGMA {pragma}")
        self.raw.execute("CREATE TABLE r (id TEXT PRIMARY KEY, ts REAL, attributes TEXT)")
        self.raw_lock = threading.Lock()
        self.i = 0

    def write(self, n: int) -> None:
        for _ in range(n):
            self.i += 1
            event = _event(self.i)
            self.audit.write(event, event.attributes(self.settings), CONTEXT)

    def raw_insert(self, n: int) -> None:
        for _ in range(n):
            with self.raw_lock:
                self.raw.execute(
                    "INSERT INTO r VALUES (?, ?, ?)", (uuid.uuid4().hex, time.time(), "{}")
                )

    def group_commit(self, n: int) -> None:
        rows = []
        for _ in range(n):
            self.i += 1
            event = _event(self.i)
            attrs = event.attributes(self.settings)
            rows.append((uuid.uuid4().hex, time.time(), json.dumps(attrs)))
        with self.raw_lock:
            self.raw.execute("BEGIN")
            self.raw.executemany("INSERT INTO r VALUES (?, ?, ?)", rows)
            self.raw.execute("COMMIT")

    def timed(self, name: str) -> float:
        start = time.perf_counter_ns()
        getattr(self, name)(BATCH)
        return (time.perf_counter_ns() - start) / BATCH / 1e3

    def _repeat(self, name: str, events: int) -> None:
        for _ in range(max(1, events // BATCH)):
            getattr(self, name)(BATCH)

    def concurrent(self, name: str, threads: int, per_thread: int) -> float:
        """Events per second with ``threads`` writers, each writing ``per_thread`` events."""
        workers = [
            threading.Thread(target=self._repeat, args=(name, per_thread)) for _ in range(threads)
        ]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return threads * max(1, per_thread // BATCH) * BATCH / (time.perf_counter() - start)

    def handle(self, command: str) -> dict[str, Any]:
        rounds, per_thread = (int(x) for x in command.split())
        names = ["write", "raw_insert", "group_commit"]
        samples: dict[str, list[float]] = {name: [] for name in names}
        for i in range(rounds):
            for name in names[i % 3 :] + names[: i % 3]:
                samples[name].append(self.timed(name))
        rates: dict[str, float] = {}
        for threads in (1, 4, 16):
            for name in ("write", "group_commit"):
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
    print(f"3. per audit event (HITLDecisionMade), us per event, batches of {BATCH}")
    print(row("AuditLog.write (commit per event)", result["write"]))
    print(row("bare SQLite autocommit insert", result["raw_insert"]))
    print(row(f"group commit, {BATCH} per txn (proposal)", result["group_commit"]))
    rates = answer["rates"]
    for threads in (1, 4, 16):
        print(
            f"  {threads:>2} threads: AuditLog.write {rates[f'write@{threads}']:9.0f} events/s"
            f"   group commit {rates[f'group_commit@{threads}']:9.0f} events/s"
        )
    print(
        "  batching: none. Every write is its own SQLite transaction under one lock, on the"
        " caller's thread (the event loop); log records are batched by the SDK only."
    )
    return result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        bench = AuditBench(Path(folder))
        serve_commands(bench.handle, {"ready": True})


if __name__ == "__main__":
    main()
