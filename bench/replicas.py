"""Benchmark 8: replicas on one PostgreSQL.

- **Decision latency across replicas**: a conversation streams on replica A until its
  ``approval_required`` event; the decision is posted to replica B; measured from just
  before that ``POST`` to the ``tool_result`` event on A's stream, with PostgreSQL
  ``NOTIFY`` waking A (the default) and with the bounded poll alone (NOTIFY off), the two
  pairs of replicas measured in turns, one conversation at a time.
- **Requests/s for 1 and 3 replicas** on the same 2 cores, both behind HAProxy (the balancer
  `make stack REPLICAS=N` runs), closed-loop load through the balancer, phases interleaved
  (:mod:`bench.load`); the coder flow's decisions reach whichever replica the balancer
  picks. Three replicas share the same cores, so no gain is expected: the figure shows that
  nothing degrades.

Each set of replicas has its own database on the run's server (:mod:`bench.postgres`) and
one tool-workspace folder; telemetry is on, to a local OTLP receiver.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from scripts import processes

from bench.load import PhaseStats, interleave
from bench.postgres import PostgresServer, server_cpu_s
from bench.proc import Worker
from bench.service import Receiver, Service, free_port, telemetry_env
from bench.stats import Summary, summarize

LATENCY_GOAL_P99_MS = 50.0
# The poll alone: the listener never starts, so only the bounded poll finds the decision.
POLL_ONLY = {"AGENT_RUNTIME_DECISION_NOTIFY": "false"}
_ids = itertools.count()


class Balanced:
    """Replicas of the service on one database behind HAProxy: what :mod:`bench.load` loads
    (its ``port`` is the balancer's; its CPU is every replica's)."""

    def __init__(
        self, name: str, count: int, database_url: str, receiver_port: int, server_pid: int
    ) -> None:
        self.name = name
        self._dir = tempfile.TemporaryDirectory(prefix=f"bench-replicas-{name}-")
        env = telemetry_env(
            receiver_port,
            DATABASE_URL=database_url,
            AGENT_RUNTIME_WORKSPACE_DIR=str(Path(self._dir.name) / "workspaces"),
        )
        self.replicas = [
            Service(f"{name}-{i + 1}", env, database_pid=server_pid) for i in range(count)
        ]
        self.port = free_port()
        self._balancer = processes.balancer_process(
            processes.haproxy_binary(),
            self.port,
            [replica.port for replica in self.replicas],
            Path(self._dir.name),
            health_port=free_port(),
        )
        self._balancer.start()
        self._balancer.wait_healthy(timeout=30.0, interval=0.1)
        self._server_pid = server_pid

    def cpu_s(self) -> float:
        return sum(replica.cpu_s() for replica in self.replicas)

    def database_cpu_s(self) -> float | None:
        return server_cpu_s(self._server_pid)

    def close(self) -> None:
        self._balancer.stop()
        for replica in self.replicas:
            replica.close()
        self._dir.cleanup()


@dataclass(slots=True)
class ReplicaResult:
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    """Per wake-up (``notify``, ``poll``): each decision's latency across replicas."""
    by_flow: dict[str, dict[str, PhaseStats]] = field(default_factory=dict)
    """Per flow, per replica count (``1``, ``3``): the load phases through the balancer."""

    def latency(self, wake_up: str) -> Summary:
        return summarize(self.latency_ms[wake_up])

    def rps_ratio(self, flow: str) -> float:
        """Requests/s of 3 replicas over 1 (medians of their phases)."""
        one, three = self.by_flow[flow]["1"], self.by_flow[flow]["3"]
        return three.rps_summary.median / one.rps_summary.median if one.rps else 0.0


async def decision_latency_ms(stream_on: str, decide_on: str) -> float:
    """One conversation streaming on ``stream_on``, decided on ``decide_on``: milliseconds
    from the decision's ``POST`` to the ``tool_result`` event on the stream."""
    body = {
        "session_id": f"replicas-{next(_ids)}-{time.monotonic_ns()}",
        "message": "Create a sorting function",
    }
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream("POST", f"{stream_on}/agent/message/stream", json=body) as reply,
    ):
        reply.raise_for_status()
        decision: asyncio.Task[httpx.Response] | None = None
        started = 0.0
        event = ""
        async for line in reply.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "approval_required":
                call_id = json.loads(line[5:])["call_id"]
                started = time.perf_counter()
                decision = asyncio.create_task(
                    http.post(f"{decide_on}/v1/approvals/{call_id}", json={"decision": "APPROVE"})
                )
            elif line.startswith("data:") and event == "tool_result":
                elapsed_ms = (time.perf_counter() - started) * 1e3
                if decision is None:
                    raise RuntimeError("a tool_result before any approval_required")
                answer = await decision
                if answer.status_code != 200 or answer.json().get("resumed") != "stream":
                    raise RuntimeError(f"the decision answered {answer.status_code}: {answer.text}")
                return elapsed_ms
    raise RuntimeError("the stream ended without a tool_result")


def _latencies(pairs: Mapping[str, Sequence[Service]], rounds: int) -> dict[str, list[float]]:
    """``rounds`` decisions per pair, the pairs taking turns (one warm-up each)."""
    found: dict[str, list[float]] = {name: [] for name in pairs}

    def url(service: Service) -> str:
        return f"http://127.0.0.1:{service.port}"

    for a, b in pairs.values():
        asyncio.run(decision_latency_ms(url(a), url(b)))
    for _ in range(rounds):
        for name, (a, b) in pairs.items():
            found[name].append(asyncio.run(decision_latency_ms(url(a), url(b))))
    return found


def measure(*, quick: bool, postgres: PostgresServer | None) -> ReplicaResult | None:
    """None (after saying so) when the run has no PostgreSQL server."""
    print("8. replicas on one PostgreSQL")
    if postgres is None:
        print("  (skipped: no PostgreSQL installation; deploy/ci-prereqs.sh installs it)")
        return None
    rounds, load_rounds, seconds, cap = (3, 1, 1.0, 20) if quick else (60, 4, 4.0, 100_000)
    receiver = Receiver("ok")
    result = ReplicaResult()
    pairs: dict[str, list[Service]] = {}
    balanced: dict[str, Balanced] = {}
    loadgen: Worker | None = None
    workspaces = tempfile.TemporaryDirectory(prefix="bench-replicas-ws-")
    try:
        for wake_up, extra in (("notify", {}), ("poll", POLL_ONLY)):
            database = f"bench_replicas_{wake_up}"
            postgres.create_database(database)
            env = telemetry_env(
                receiver.port,
                DATABASE_URL=postgres.url(database),
                AGENT_RUNTIME_WORKSPACE_DIR=str(Path(workspaces.name) / wake_up),
                **extra,
            )
            pairs[wake_up] = [Service(f"{wake_up}-{side}", env) for side in "AB"]
        result.latency_ms = _latencies(pairs, rounds)
        for services in pairs.values():
            for service in services:
                service.close()
        for count in (1, 3):
            database = f"bench_replicas_{count}"
            postgres.create_database(database)
            balanced[str(count)] = Balanced(
                str(count), count, postgres.url(database), receiver.port, postgres.process.pid
            )
        loadgen = Worker("bench.loadgen")
        for flow in ("ask", "coder"):
            result.by_flow[flow] = interleave(
                loadgen,
                balanced,
                flow,
                rounds=load_rounds,
                concurrency=8,
                seconds=seconds,
                cap=cap,
            )
    finally:
        if loadgen is not None:
            loadgen.close()
        for services in pairs.values():
            for service in services:
                service.close()
        for group in balanced.values():
            group.close()
        receiver.close()
        workspaces.cleanup()
    _print(result)
    return result


def _print(result: ReplicaResult) -> None:
    for wake_up, label in (("notify", "NOTIFY"), ("poll", "the poll alone")):
        summary = result.latency(wake_up)
        print(
            f"  decision on B -> tool_result on A's stream, {label:<14}"
            f" p50 {summary.median:7.1f} ms  p99 {summary.p99:7.1f} ms  n={summary.n}"
            + (f" (goal p99 <= {LATENCY_GOAL_P99_MS:.0f} ms)" if wake_up == "notify" else "")
        )
    for flow, phases in result.by_flow.items():
        for count, stats in phases.items():
            print(stats.line(f"{flow}, {count} replica{'s' if count != '1' else ''}"))
        print(f"  {flow}: 3 replicas / 1 = {result.rps_ratio(flow):.2f}x req/s (same 2 cores)")
