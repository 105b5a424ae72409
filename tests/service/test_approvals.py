"""Approvals across time: timeout, disconnect, shutdown, restart."""

from __future__ import annotations

import asyncio
import time

import httpx

from agent_runtime.app import create_app
from telemetry import names as n
from tests.service.conftest import Conversation
from tests.support.otel import Telemetered
from tests.support.server import serve, sse_events


async def _wait_for_approval(http: httpx.AsyncClient, session_id: str) -> dict:
    """Open a stream, read until approval_required, then drop the connection."""
    async with http.stream(
        "POST",
        "/agent/message/stream",
        json={"session_id": session_id, "message": "Create a sorting function"},
    ) as response:
        async for event in sse_events(response):
            if event.event == "approval_required":
                return event.data
    raise AssertionError("no approval_required event")


def _request_span(telemetered: Telemetered, timeout_s: float = 10.0):
    return telemetered.wait_for_span(n.SPAN_AGENT_REQUEST, timeout_s)


async def test_timeout_rejects_with_outcome_timeout_not_error(telemetered, make_settings) -> None:
    with serve(create_app(make_settings(AGENT_RUNTIME_APPROVAL_TIMEOUT_S=0.2))) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            conversation = Conversation(http)
            await conversation.send("s-timeout", "Create a sorting function")
    assert conversation.of("tool_result")[0]["outcome"] == "rejected"
    tool = telemetered.span("execute_tool write_file")
    decision = next(e for e in tool.events if e.name == n.EVENT_HITL_DECISION_MADE)
    assert decision.attributes[n.HITL_OUTCOME] == "timeout"
    assert decision.attributes[n.HITL_DECISION] == "REJECT"
    assert tool.status.is_unset


async def test_disconnect_ends_spans_once_and_keeps_the_approval(
    telemetered, make_settings
) -> None:
    with serve(create_app(make_settings())) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            approval = await _wait_for_approval(http, "s-gone")
            request = _request_span(telemetered)
            pending = (await http.get("/v1/approvals", params={"session_id": "s-gone"})).json()
            assert [p["call_id"] for p in pending] == [approval["call_id"]]
            decided = await http.post(
                f"/v1/approvals/{approval['call_id']}", json={"decision": "APPROVE"}
            )
    assert request.attributes[n.REQUEST_OUTCOME] == n.OUTCOME_DISCONNECTED
    assert decided.status_code == 200 and decided.json()["resumed"] == "here"
    assert decided.json()["result"]["outcome"] == "completed"
    ids = [s.context.span_id for s in telemetered.spans()]
    assert len(ids) == len(set(ids))


async def test_a_client_that_leaves_gives_the_sessions_run_lease_back_at_once(
    telemetered, make_settings
) -> None:
    """The server cancels the stream of a client that went away; its finaliser still gives
    the lease back, so the decision resumes the run here at once instead of waiting for the
    lease to lapse (``run_lease_s``): on PostgreSQL a cancelled release used to be lost."""
    with serve(create_app(make_settings(run_lease_s=20))) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=15) as http:
            approval = await _wait_for_approval(http, "s-lease")
            hitl = running.app.state.runtime.hitl
            deadline = time.monotonic() + 10
            while hitl.waiting_here(approval["call_id"]):  # the server saw the client go
                assert time.monotonic() < deadline, "the stream still waits"
                await asyncio.sleep(0.01)
            started = time.monotonic()
            decided = await http.post(
                f"/v1/approvals/{approval['call_id']}", json={"decision": "APPROVE"}
            )
            took = time.monotonic() - started
    assert decided.status_code == 200 and decided.json()["resumed"] == "here"
    assert took < 5, f"the decision waited {took:.1f} s for the run lease"


async def test_pending_approval_survives_a_restart_and_is_decided_after(
    telemetered, make_settings
) -> None:
    settings = make_settings()
    with serve(create_app(settings)) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            approval = await _wait_for_approval(http, "s-restart")
    waiting = telemetered.span("execute_tool write_file")
    telemetered.reset()
    with serve(create_app(settings)) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            pending = (await http.get("/v1/approvals")).json()
            assert [p["call_id"] for p in pending] == [approval["call_id"]]
            decided = await http.post(
                f"/v1/approvals/{approval['call_id']}", json={"decision": "APPROVE"}
            )
            audit = (
                await http.get("/v1/audit", params={"event_type": "hitl.decision_made"})
            ).json()
    assert decided.status_code == 200 and decided.json()["result"]["outcome"] == "completed"
    decision_span = telemetered.span(n.SPAN_HITL_DECISION)
    assert [link.context.span_id for link in decision_span.links] == [waiting.context.span_id]
    assert [r["trace_id"] for r in audit] == [f"{waiting.context.trace_id:032x}"]
    assert (settings.data_dir / "workspaces" / "s-restart" / "sort.py").exists()


async def test_shutdown_with_an_approval_pending_ends_every_span(
    telemetered, make_settings
) -> None:
    app = create_app(make_settings())
    with serve(app) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            events = []
            async with http.stream(
                "POST",
                "/agent/message/stream",
                json={"session_id": "s-shut", "message": "Create a sorting function"},
            ) as response:
                async for event in sse_events(response):
                    events.append(event.event)
                    if event.event == "approval_required":
                        app.state.runtime.orchestrator.shutdown()
            pending = (await http.get("/v1/approvals")).json()
    assert events[-2:] == ["error", "done"]
    assert _request_span(telemetered).attributes[n.REQUEST_OUTCOME] == n.OUTCOME_SHUTDOWN
    assert len(pending) == 1
    ids = [s.context.span_id for s in telemetered.spans()]
    assert len(ids) == len(set(ids))
