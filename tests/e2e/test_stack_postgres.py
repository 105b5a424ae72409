"""`make stack` on PostgreSQL: the one-machine stack of scripts/processes.py (what
`scripts/stack.py up` starts) with ``DATABASE_URL`` handed to the service, against a real
server of the test session, on free ports.

The service keeps its data in that database (no SQLite file in its data directory), the
flow's trace reaches Jaeger whole, and its database client spans are children of the
request's spans, with the server's address and no password.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from e2e_support import (
    CREATE,
    SERVICE_ENTRY_POINT,
    TelemetryStack,
    hex_id,
    run_flow,
    wait_for_trace,
)
from scripts import processes
from scripts.processes import PostgresServer

from agent_runtime.store import DEFAULT_SQLITE_FILENAME


async def test_the_stack_runs_the_service_on_the_database_url(
    tmp_path: Path,
    collector_binary: Path,
    jaeger_binary: Path,
    prometheus_binary: Path,
    postgres_server: PostgresServer,
    postgres_url: str,
) -> None:
    stack = processes.single_stack(
        processes.Ports.free(),
        tmp_path,
        collector=collector_binary,
        jaeger=jaeger_binary,
        prometheus=prometheus_binary,
        service_argv=[str(SERVICE_ENTRY_POINT), "serve"],
        pid_files=False,
        service_extra_env={"DATABASE_URL": postgres_url},
    )
    backends = TelemetryStack(
        stack.ports, stack.state_dir, stack.collector, stack.jaeger, stack.prometheus
    )
    processes.start_all(stack.processes)
    try:
        flow = await run_flow(f"http://127.0.0.1:{stack.ports.service}", CREATE)
        flow.assert_ok()
        trace = wait_for_trace(
            backends,
            hex_id(flow.correlation_id),
            span_names={"agent.request", "execute_tool write_file", "INSERT", "UPDATE"},
        )
    finally:
        processes.stop_all(stack.processes)
    database = urllib.parse.urlsplit(postgres_url).path.lstrip("/")
    stored = postgres_server.psql(
        "SELECT count(*) FROM sessions WHERE session_id = :'id'",
        database=database,
        variables={"id": flow.session_id},
    )
    assert stored == "1", "the session is not in the PostgreSQL database"
    assert not (tmp_path / processes.SERVICE_NAME / DEFAULT_SQLITE_FILENAME).exists()
    spans = trace["spans"]
    ids = {span["spanID"] for span in spans}
    client = [s for s in spans if any(t["key"] == "db.system" for t in s.get("tags", []))]
    assert client, "no database client span in the trace"
    for span in client:
        parents = [r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
        assert parents and parents[0] in ids, f"{span['operationName']} has no parent here"
    password = urllib.parse.urlsplit(postgres_url).password
    assert password and password not in json.dumps(trace)
