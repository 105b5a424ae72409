"""HAProxy in front of service replicas, as scripts/processes/ starts it.

Two `agent-runtime serve` processes (telemetry off, a data directory each) behind the
balancer of `balancer_process` (Debian's HAProxy, which deploy/ci-prereqs.sh installs). The
replicas share no store yet, so each request is checked on the replica that served it. The
balancer spreads requests over both, streams SSE as it comes (the approval_required event
arrives while the stream waits for its human), sends requests elsewhere when a replica stops,
and reports itself unhealthy once none is left.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from e2e_support import ASK, CREATE, SERVICE_ENTRY_POINT, Flow, http_status, run_flow, wait_until
from scripts import processes

pytestmark = pytest.mark.e2e

QUIET = {
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}


@dataclass
class Balanced:
    url: str
    health: str
    replicas: list[processes.ManagedProcess]
    replica_urls: list[str]


@pytest.fixture(scope="module")
def balanced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Balanced]:
    """Two replicas and their balancer for this module (the last test stops the replicas)."""
    if not SERVICE_ENTRY_POINT.exists():
        pytest.fail(f"{SERVICE_ENTRY_POINT} is missing: run `uv sync` (make sync) first")
    try:
        haproxy = processes.haproxy_binary()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    tmp_path = tmp_path_factory.mktemp("balanced")
    pool = processes.PortPool()
    ports = [pool.take(), pool.take()]
    front, health = pool.take(), pool.take()
    replicas = [
        processes.service_process(
            f"replica-{i + 1}",
            port,
            {"AGENT_RUNTIME_DATA_DIR": str(tmp_path / f"replica-{i + 1}"), **QUIET},
            tmp_path / f"replica-{i + 1}.log",
        )
        for i, port in enumerate(ports)
    ]
    balancer = processes.balancer_process(haproxy, front, ports, tmp_path, health_port=health)
    started = [*replicas, balancer]
    processes.start_all(started, timeout=60)
    try:
        yield Balanced(
            f"http://127.0.0.1:{front}",
            f"http://127.0.0.1:{health}/healthz",
            replicas,
            [f"http://127.0.0.1:{port}" for port in ports],
        )
    finally:
        processes.stop_all(started)


def _served_by(balanced: Balanced, flow: Flow) -> list[int]:
    """The replicas that know the flow's session (the one that served it)."""
    return [
        i
        for i, url in enumerate(balanced.replica_urls)
        if http_status(f"{url}/v1/sessions/{flow.session_id}") == 200
    ]


async def test_requests_spread_over_the_replicas_and_streams_pass_through(
    balanced: Balanced,
) -> None:
    gate = asyncio.Semaphore(4)

    async def ask() -> Flow:
        async with gate:
            return await run_flow(balanced.url, ASK)

    flows = await asyncio.gather(*(ask() for _ in range(16)))
    served = []
    for flow in flows:
        flow.assert_ok()
        by = _served_by(balanced, flow)
        assert len(by) == 1, (flow.session_id, by)
        served.append(by[0])
    assert set(served) == {0, 1}, served

    # An SSE stream that waits for its human: approval_required reaches the client through
    # the balancer before the decision is made (a buffering proxy would hold it back).
    async def decide_on_its_replica(flow_call_id: str) -> None:
        for url in balanced.replica_urls:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(
                    f"{url}/v1/approvals/{flow_call_id}", json={"decision": "APPROVE"}
                )
            if response.status_code != 404:
                assert response.is_success, response.text
                return
        raise AssertionError(f"no replica knows approval {flow_call_id}")

    async with httpx.AsyncClient(base_url=balanced.url, timeout=30) as client:
        body = {"session_id": "balanced-hitl", "message": f"{CREATE} (balancer)"}
        events: list[str] = []
        async with client.stream("POST", "/agent/message/stream", json=body) as response:
            assert response.status_code == 200
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                    events.append(event)
                elif line.startswith("data:") and event == "approval_required":
                    call_id = json.loads(line.removeprefix("data:"))["call_id"]
                    await decide_on_its_replica(call_id)
    assert "approval_required" in events and events[-1] == "done", events


async def test_a_stopped_replica_is_routed_around_and_none_left_is_unhealthy(
    balanced: Balanced,
) -> None:
    balanced.replicas[0].stop()
    flows = [await run_flow(balanced.url, ASK) for _ in range(6)]
    for flow in flows:
        flow.assert_ok()
        assert _served_by(balanced, flow) == [1], flow.session_id
    assert http_status(balanced.health) == 200
    balanced.replicas[1].stop()
    wait_until(
        lambda: http_status(balanced.health) == 503,
        timeout=15,
        what="the balancer to report no replica left",
    )
