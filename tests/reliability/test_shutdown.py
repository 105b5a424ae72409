"""Item 6, shutdown: SIGTERM the real server with streams open (waiting on approvals):
every stream ends with ``error`` then ``done``, every span ends and is flushed, the process
exits 0 within a deadline, and the approvals stay pending for the next start."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx

from agent_runtime.store import DEFAULT_SQLITE_FILENAME
from telemetry import names as n
from tests.reliability.support import (
    StallingListener,
    apoll,
    converse,
    poll,
    running_service,
    scale,
)

WAITING = scale(4, 40)
EXIT_DEADLINE_S = 15.0


def _spans(stdout: str) -> list[dict]:
    """The console span exporter's JSON documents."""
    decoder, index, spans = json.JSONDecoder(), 0, []
    while (start := stdout.find("{", index)) != -1:
        document, index = decoder.raw_decode(stdout, start)
        spans.append(document)
    return spans


async def _sigterm_with_streams_open(tmp_path: Path, store_env: dict[str, str]) -> dict:
    """Open WAITING streams that wait on approvals, SIGTERM the server, collect it all."""
    data = tmp_path / "data"
    env = {"OTEL_TRACES_EXPORTER": "console", **store_env}
    with running_service(tmp_path, data, name="term", **env) as service:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
            streams = [
                asyncio.create_task(converse(http, f"term-{i}", "Create a sorting function"))
                for i in range(WAITING)
            ]
            await apoll(
                lambda: _count_pending(http, WAITING), timeout_s=30, what="approvals pending"
            )
            sent = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            outcomes = await asyncio.wait_for(asyncio.gather(*streams), timeout=EXIT_DEADLINE_S)
        code = await asyncio.to_thread(service.process.wait, EXIT_DEADLINE_S)
        exited_after = time.monotonic() - sent
        spans = _spans(service.stdout())
    traces = {o.correlation_id for o in outcomes}
    mine = [s for s in spans if s["context"]["trace_id"][2:] in traces]
    return {"code": code, "after": exited_after, "outcomes": outcomes, "spans": mine, "data": data}


async def test_sigterm_ends_open_streams_and_keeps_approvals(
    tmp_path: Path, store_env: dict[str, str]
) -> None:
    """On both backends: the next start finds the approvals in the same store."""
    run = await _sigterm_with_streams_open(tmp_path, store_env)
    assert (run["data"] / DEFAULT_SQLITE_FILENAME).exists() == (not store_env)
    assert run["after"] < EXIT_DEADLINE_S
    for outcome in run["outcomes"]:
        names = [e.event for e in outcome.events]
        assert names[-2:] == ["error", "done"], names
        assert outcome.of("error")[0]["code"] == "shutdown"
        assert outcome.of("done")[0]["outcome"] == n.OUTCOME_SHUTDOWN
    # the approvals are still pending for the next start, and can be decided there
    with running_service(tmp_path, run["data"], name="again", **store_env) as again:
        pending = httpx.get(f"{again.url}/v1/approvals").json()
        assert len(pending) == WAITING
        decided = httpx.post(
            f"{again.url}/v1/approvals/{pending[0]['call_id']}", json={"decision": "APPROVE"}
        )
        assert decided.status_code == 200
    print(
        f"\nshutdown ({'postgresql' if store_env else 'sqlite'}): "
        f"{WAITING} waiting streams ended error+done; process gone after "
        f"{run['after']:.2f} s with code {run['code']}; {len(run['spans'])} of their spans "
        "reached the exporter"
    )


async def test_sigterm_exits_zero_after_flushing_every_span(
    tmp_path: Path, store_env: dict[str, str]
) -> None:
    run = await _sigterm_with_streams_open(tmp_path, store_env)
    assert run["code"] == 0
    mine = run["spans"]
    ids = [s["context"]["span_id"] for s in mine]
    assert len(ids) == len(set(ids))
    for span in mine:
        assert span["parent_id"] is None or span["parent_id"] in ids, span["name"]
    requests = [s for s in mine if s["name"] == n.SPAN_AGENT_REQUEST]
    assert len(requests) == WAITING
    assert {s["attributes"][n.REQUEST_OUTCOME] for s in requests} == {n.OUTCOME_SHUTDOWN}
    assert len([s for s in mine if s["kind"] == "SpanKind.SERVER"]) == WAITING


async def test_flush_deadline_setting_bounds_exit_with_a_stalled_collector(
    tmp_path: Path,
) -> None:
    listener = StallingListener()
    try:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{listener.port}",
            "AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S": "0.5",
        }
        with running_service(tmp_path, tmp_path / "data", name="stall", **env) as service:
            async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
                for index in range(3):  # spans queued for the stalled exporter
                    assert (await converse(http, f"st{index}", "What is a closure?")).ok
            poll(lambda: listener.accepted, timeout_s=15, what="the exporter to connect")
            sent = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(service.process.wait, EXIT_DEADLINE_S)
            exited_after = time.monotonic() - sent
    finally:
        listener.close()
    assert code == 0  # a real exit, after the bounded flush (see the test above)
    assert exited_after < 2.5, exited_after  # 0.5 s flush deadline + server shutdown


async def _count_pending(http: httpx.AsyncClient, expected: int) -> bool:
    return len((await http.get("/v1/approvals")).json()) == expected
