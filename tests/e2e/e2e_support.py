"""What the e2e tests share: the stack's handles (processes from scripts.processes), the
service's HTTP contract as a client sees it, and readers of Jaeger, Prometheus and the audit
files.

The programs are started by scripts/processes/, the module `make stack`, the reliability
tests and the benchmarks use too; pytest puts the repository root on sys.path, so it is
imported as ``scripts.processes``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from scripts import processes
from scripts.processes import ManagedProcess, Ports, wait_until

REPO = processes.REPO
SERVICE_ENTRY_POINT = processes.service_entry_point()


class Backends(Protocol):
    """Where a stack's Jaeger and Prometheus answer (one Collector or the tiers)."""

    @property
    def jaeger_api(self) -> str: ...

    @property
    def prometheus_api(self) -> str: ...


@dataclass
class TelemetryStack:
    """The running Collector, Jaeger and Prometheus of one test session."""

    ports: Ports
    state_dir: Path
    collector: ManagedProcess
    jaeger: ManagedProcess
    prometheus: ManagedProcess

    @property
    def jaeger_api(self) -> str:
        return f"http://127.0.0.1:{self.ports.jaeger.query_http}"

    @property
    def prometheus_api(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    @property
    def collector_prometheus(self) -> str:
        return f"http://127.0.0.1:{self.ports.collector.prometheus}/metrics"

    @property
    def audit_file(self) -> Path:
        return processes.audit_file(self.state_dir / "collector")

    def restart(self, proc: ManagedProcess, timeout: float = 60.0) -> None:
        """Start a stopped or killed process again on the same ports and state."""
        restart(proc, timeout)


def restart(proc: ManagedProcess, timeout: float = 60.0) -> None:
    """Start a stopped or killed process again on the same ports and state."""
    assert not proc.running, f"{proc.name} is still running"
    proc.start()
    proc.wait_healthy(timeout=timeout)


@dataclass
class Service:
    """The agent-runtime service running as a real process against the stack."""

    base_url: str
    process: ManagedProcess
    data_dir: Path


CREATE = "Create a sorting function"  # orchestrator -> coder, write_file (approval)
FIX = "Fix the bug in sort.py"  # orchestrator -> debug, read_file, debug -> coder, write_file
ASK = "What is a closure?"  # orchestrator -> ask, text only
FAIL = "What is a closure? [fail]"  # the scripted provider raises mid-stream
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "agent-runtime.json"
TRACE_DEADLINE_S = 60.0
METRIC_DEADLINE_S = 60.0


# --- the service's HTTP contract -------------------------------------------------------


@dataclass
class Flow:
    """One POST /agent/message/stream as the client saw it."""

    session_id: str
    status_code: int
    correlation_id: str
    events: list[tuple[str, Any]] = field(default_factory=list)
    decisions: list[httpx.Response] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def of(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    def assert_ok(self) -> None:
        """The request succeeded: 200, meta first, done last, no error, decisions accepted."""
        assert self.status_code == 200, self
        names = self.names()
        assert names[:1] == ["meta"] and names[-1:] == ["done"], names
        assert "error" not in names, self.of("error")
        assert self.of("meta")[0]["correlation_id"] == self.correlation_id
        for response in self.decisions:
            assert response.is_success, (response.status_code, response.text)


def new_session() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


async def run_flow(
    base_url: str,
    message: str,
    *,
    session_id: str | None = None,
    decision: str = "APPROVE",
    agent: str | None = None,
    before_decision: Callable[[], Awaitable[None]] | None = None,
    timeout: float = 60.0,
) -> Flow:
    """Stream one message; answer every approval_required from a second client.

    The stream pauses at approval_required until the decision is posted by another
    request, so the decision goes out in its own task on its own client while this one
    keeps reading the stream.
    """
    session_id = session_id or new_session()
    # Every message is made unique: the scripted model derives tool-call ids from the
    # conversation, and approval ids are unique service-wide (see the closing note).
    message = f"{message} (e2e {uuid.uuid4().hex[:8]})"
    body: dict[str, Any] = {"session_id": session_id, "message": message}
    if agent is not None:
        body["agent"] = agent

    async def decide(client: httpx.AsyncClient, approval: dict[str, Any]) -> httpx.Response:
        if before_decision is not None:
            await before_decision()
        payload: dict[str, Any] = {"decision": decision}
        if decision == "EDIT":
            payload["arguments"] = {**approval.get("arguments", {}), "content": "# edited\n"}
        return await client.post(f"/v1/approvals/{approval['call_id']}", json=payload)

    async def stream() -> Flow:
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=timeout) as client,
            httpx.AsyncClient(base_url=base_url, timeout=timeout) as decider,
        ):
            pending: list[asyncio.Task[httpx.Response]] = []
            async with client.stream("POST", "/agent/message/stream", json=body) as response:
                flow = Flow(
                    session_id,
                    response.status_code,
                    response.headers.get("x-correlation-id", ""),
                )
                if response.status_code != 200:
                    await response.aread()
                    flow.events.append(("http_error", response.text))
                    return flow
                event, data_lines = "message", []
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        continue  # an SSE comment (keep-alive)
                    if line.startswith("event:"):
                        event = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        data_lines.append(line.removeprefix("data:").removeprefix(" "))
                    elif line == "" and data_lines:
                        data = json.loads("\n".join(data_lines))
                        flow.events.append((event, data))
                        if event == "approval_required":
                            pending.append(asyncio.create_task(decide(decider, data)))
                        event, data_lines = "message", []
            flow.decisions = list(await asyncio.gather(*pending))
            return flow

    return await asyncio.wait_for(stream(), timeout=timeout)


async def audit_records(base_url: str, session_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.get("/v1/audit", params={"session_id": session_id, "limit": 1000})
    response.raise_for_status()
    body = response.json()
    if isinstance(body, dict):  # {"records": [...]} or the like: the one list in it
        lists = [value for value in body.values() if isinstance(value, list)]
        assert len(lists) == 1, body
        body = lists[0]
    assert isinstance(body, list)
    return body


# --- the backends ----------------------------------------------------------------------


def hex_id(value: str) -> str:
    return value.lower().rjust(32, "0") if len(value) > 16 else value.lower().rjust(16, "0")


def jaeger_trace(stack: Backends, trace_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{stack.jaeger_api}/api/traces/{trace_id}", timeout=5)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    data = response.json().get("data") or []
    return data[0] if data else None


def span_events(span: dict[str, Any]) -> list[str]:
    """Jaeger shows OTel span events as logs whose field `event` holds the name."""
    names = []
    for log in span.get("logs", []):
        for log_field in log.get("fields", []):
            if log_field.get("key") == "event":
                names.append(str(log_field.get("value")))
    return names


def wait_for_trace(
    stack: Backends,
    trace_id: str,
    *,
    span_names: Iterable[str] = (),
    events: Iterable[str] = (),
    timeout: float = TRACE_DEADLINE_S,
) -> dict[str, Any]:
    """Poll Jaeger until the trace holds the spans and span events asked for."""
    want_spans, want_events = set(span_names), set(events)
    seen: dict[str, Any] = {}

    def probe() -> dict[str, Any] | None:
        trace = jaeger_trace(stack, trace_id)
        if trace is None:
            return None
        spans = trace["spans"]
        have_spans = {span["operationName"] for span in spans}
        have_events = {name for span in spans for name in span_events(span)}
        seen.update(spans=sorted(have_spans), events=sorted(have_events))
        ok = want_spans <= have_spans and want_events <= have_events
        return trace if ok else None

    try:
        return wait_until(probe, timeout=timeout, what=f"trace {trace_id} in Jaeger")
    except TimeoutError as exc:
        raise AssertionError(
            f"{exc}; wanted spans {sorted(want_spans)} events {sorted(want_events)}; saw {seen}"
        ) from None


def decision_is_linked(
    stack: Backends, decision_trace_id: str, stream_trace_id: str, span_ids: frozenset[str]
) -> bool:
    """The decision request's trace has a span linked to one of ``span_ids`` of the stream's."""
    trace = jaeger_trace(stack, decision_trace_id)
    return trace is not None and any(
        hex_id(ref["traceID"]) == stream_trace_id and hex_id(ref["spanID"]) in span_ids
        for span in trace["spans"]
        for ref in span.get("references", [])
    )


def http_status(url: str) -> int:
    """The status ``url`` answers with, 0 when nothing answers."""
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


def prom_query(stack: Backends, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.prometheus_api}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    assert isinstance(result, list)
    return result


def prom_exemplars(stack: Backends, expr: str, window_s: float = 600) -> list[dict[str, Any]]:
    """Prometheus' query_exemplars for ``expr`` over the last ``window_s`` seconds: one entry
    per series, ``{"seriesLabels": {...}, "exemplars": [{"labels": {"trace_id": ...}}]}``."""
    end = time.time()
    response = httpx.get(
        f"{stack.prometheus_api}/api/v1/query_exemplars",
        params={"query": expr, "start": end - window_s, "end": end},
        timeout=5,
    )
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    result = body["data"]
    assert isinstance(result, list)
    return result


def wait_for_series(
    stack: Backends, expr: str, timeout: float = METRIC_DEADLINE_S
) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        return prom_query(stack, expr) or None

    try:
        return wait_until(probe, timeout=timeout, what=f"Prometheus data for {expr}")
    except TimeoutError as exc:
        names = prom_query(stack, 'count by (__name__) ({__name__=~"agent_runtime_.+|gen_ai_.+"})')
        have = sorted(series["metric"]["__name__"] for series in names)
        raise AssertionError(f"{exc}; the service's series present: {have}") from None


def audit_file_records(path: Path) -> dict[str, dict[str, str]]:
    """record_id -> {trace_id, event_type} from the file exporter's JSON lines (and rotations)."""
    found: dict[str, dict[str, str]] = {}
    for file in sorted(path.parent.glob(f"{path.stem}*{path.suffix}")):
        for line in file.read_text(errors="replace").splitlines():
            try:
                payload = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line still being written
            for resource_logs in payload.get("resourceLogs", []):
                for scope_logs in resource_logs.get("scopeLogs", []):
                    for record in scope_logs.get("logRecords", []):
                        attrs = {
                            a["key"]: next(iter(a.get("value", {}).values()), None)
                            for a in record.get("attributes", [])
                        }
                        record_id = attrs.get("agent_runtime.audit.record_id")
                        if record_id:
                            found[str(record_id)] = {
                                "trace_id": str(record.get("traceId", "")).lower(),
                                "event_type": str(attrs.get("agent_runtime.audit.event_type")),
                            }
    return found


def wait_for_audit_file(
    stack: TelemetryStack, records: list[dict[str, Any]], timeout: float = 90.0
) -> None:
    """Every record (from GET /v1/audit) is in the stack's audit file with its trace id."""
    wait_for_audit_records([stack.audit_file], records, timeout=timeout)


def wait_for_audit_records(
    files: Sequence[Path], records: list[dict[str, Any]], timeout: float = 90.0
) -> None:
    """Every record (from GET /v1/audit) is in one of the audit ``files`` with its trace id."""
    expected = {r["record_id"]: hex_id(r["trace_id"]) for r in records}
    missing: dict[str, str] = {}

    def probe() -> bool:
        in_files: dict[str, dict[str, str]] = {}
        for path in files:
            in_files.update(audit_file_records(path))
        missing.clear()
        for record_id, trace_id in expected.items():
            got = in_files.get(record_id)
            if got is None or got["trace_id"] != trace_id:
                missing[record_id] = trace_id
        return not missing

    try:
        wait_until(probe, timeout=timeout, what=f"{len(expected)} audit records in {files}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; missing {len(missing)}: {missing}") from None
