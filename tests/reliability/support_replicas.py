"""Helpers of the replicas tests: N real ``agent-runtime serve`` processes on one PostgreSQL
database, sharing a workspace folder, each exporting its spans to its stdout (the console
exporter), and what to read back from them (spans, the listener connections, leases)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.reliability.support import KEY, ServiceProcess, poll, running_service

USER = "alice@example.test"
HEADERS = {"X-Internal-Auth": KEY}
DECIDER = {**HEADERS, "X-User-ID": USER}
LISTENER = "agent-runtime-decision-listener"


def replica_env(database_url: str, workspaces: Path, **overrides: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "AGENT_RUNTIME_INTERNAL_KEY": KEY,
        "AGENT_RUNTIME_WORKSPACE_DIR": str(workspaces),
        "AGENT_RUNTIME_RUN_LEASE_S": "2",
        "AGENT_RUNTIME_SWEEP_INTERVAL_S": "0.5",
        "AGENT_RUNTIME_DECISION_POLL_S": "1",
        "AGENT_RUNTIME_DB_SPANS": "false",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BSP_MAX_QUEUE_SIZE": "65536",
    }
    env.update(overrides)
    return env


@contextmanager
def replicas(
    tmp_path: Path, database_url: str, count: int, **overrides: str
) -> Iterator[list[ServiceProcess]]:
    """``count`` replicas on one database (killed at the end)."""
    workspaces = tmp_path / "workspaces"
    env = replica_env(database_url, workspaces, **overrides)
    with ExitStack() as stack:
        started = [
            stack.enter_context(
                running_service(tmp_path, tmp_path / f"data-{name}", name=name, **env)
            )
            for name in "ABC"[:count]
        ]
        yield started


def spans(service: ServiceProcess) -> list[dict[str, Any]]:
    """The console exporter's spans in ``service``'s stdout."""
    text, decoder, index, found = service.stdout(), json.JSONDecoder(), 0, []
    while (start := text.find('{\n    "name"', index)) != -1:
        try:
            document, index = decoder.raw_decode(text, start)
        except json.JSONDecodeError:  # a document still being written
            break
        found.append(document)
    return found


def hex_id(value: str | None) -> str | None:
    return None if value is None else value.removeprefix("0x")


def trace_of(services: list[ServiceProcess], trace_id: str) -> list[dict[str, Any]]:
    return [
        s for svc in services for s in spans(svc) if hex_id(s["context"]["trace_id"]) == trace_id
    ]


def trace_problems(trace: list[dict[str, Any]]) -> list[str]:
    """One root, no span exported twice, no parent that never ended."""
    ids = Counter(hex_id(s["context"]["span_id"]) for s in trace)
    problems = [f"span {i} exported {c} times" for i, c in ids.items() if c > 1]
    roots = [s["name"] for s in trace if s["parent_id"] is None]
    if len(roots) != 1:
        problems.append(f"{len(roots)} roots: {roots}")
    problems += [
        f"{s['name']!r} has a parent that never ended"
        for s in trace
        if s["parent_id"] is not None and hex_id(s["parent_id"]) not in ids
    ]
    return problems


def whole_trace(services: list[ServiceProcess], trace_id: str) -> list[dict[str, Any]]:
    """The trace once its request span and its root were exported (bounded wait): the
    root, the HTTP server span, ends after the response's last byte, so it can reach the
    exporter one batch after ``agent.request``."""

    def complete() -> list[dict[str, Any]] | None:
        trace = trace_of(services, trace_id)
        request = any(s["name"] == "agent.request" for s in trace)
        root = any(s["parent_id"] is None for s in trace)
        return trace if request and root else None

    found: list[dict[str, Any]] = poll(complete, timeout_s=20, what=f"trace {trace_id}")
    return found


def links(span: dict[str, Any]) -> set[str]:
    return {str(hex_id(link["context"]["span_id"])) for link in span.get("links") or ()}


def lease_expired(database_url: str, session_id: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT run_owner, run_until FROM sessions WHERE session_id = %s", (session_id,)
        ).fetchone()
    return row is not None and (row[0] is None or row[1] < time.time())


def listener_pids(database_url: str) -> list[int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
            "AND datname = current_database()",
            (LISTENER,),
        ).fetchall()
    return sorted(int(r[0]) for r in rows)


def terminate(database_url: str, pids: list[int]) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def decisions_audited(http: httpx.AsyncClient) -> Counter[str]:
    """How many ``hitl_decision_made`` audit records each call id has."""
    records = (
        await http.get(
            "/v1/audit",
            params={"event_type": "hitl_decision_made", "limit": 10_000},
            headers=HEADERS,
        )
    ).json()
    return Counter(r["call_id"] for r in records)
