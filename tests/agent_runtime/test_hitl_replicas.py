"""Two HITL managers on one store, as two replicas: a decision recorded by one reaches the
stream waiting in the other (by the poll alone: no wake-up crosses between them here), is
reported once, on the waiting span, linked to the span it was recorded in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import telemetry
from agent_runtime.hitl import HITLManager
from agent_runtime.store import SessionRecord, SQLiteStore
from telemetry import names as n
from tests.support.fixtures import hub_on
from tests.support.otel import Telemetered


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "replicas.db") as opened:
        await opened.insert_session(SessionRecord("s1", 1.0))
        yield opened


async def test_a_decision_recorded_by_another_manager_reaches_the_waiting_stream(
    telemetered: Telemetered, store: SQLiteStore
) -> None:
    async with hub_on(store) as hub:
        waiting_side = HITLManager(store, hub, hub.spans, timeout_s=60.0, poll_s=0.05)
        deciding_side = HITLManager(store, hub, hub.spans, timeout_s=60.0, poll_s=0.05)
        now = time.time()
        assert await store.claim_session_run("s1", "stream", now=now, until=now + 60)
        request = telemetry.RequestTrace(hub.spans, "s1")
        run = request.agent("coder")
        tool_run = request.tool("write_file", "c1", run=run)
        record = await waiting_side.request(
            call_id="c1",
            session_id="s1",
            tool="write_file",
            arguments={"path": "a.py"},
            agent="coder",
            reason="writes",
            tool_run=tool_run,
        )
        waiting = asyncio.ensure_future(waiting_side.wait(record))
        await asyncio.sleep(0)
        decided = await deciding_side.decide("c1", "APPROVE", decided_by="bob")
        assert (decided.live, decided.remote) == (True, True)
        resolution = await asyncio.wait_for(waiting, timeout=5)
        assert resolution.decision == "APPROVE"
        assert not await deciding_side.claim_resume("c1")  # the waiting side claimed it
        tool_run.stop("completed")
        request.finish(n.OUTCOME_COMPLETED)
        await hub.flush()
        audit = await store.query_audit(
            session_id="s1", event_type=n.AUDIT_HITL_DECISION_MADE, limit=10
        )
    assert len(audit) == 1 and audit[0].details["decided_by"] == "bob"
    events = [e.name for e in telemetered.span("execute_tool write_file").events]
    assert events.count(n.EVENT_HITL_DECISION_MADE) == 1
    decision = telemetered.span(n.SPAN_HITL_DECISION)
    assert not [e for e in decision.events if e.name == n.EVENT_HITL_DECISION_MADE]
    tool = telemetered.span("execute_tool write_file")
    assert decision.context.span_id in {link.context.span_id for link in tool.links}
    assert hub.metrics.get_metrics()["hitl_decisions"]["write_file"]["APPROVE"] == 1


async def test_without_a_live_lease_the_deciding_manager_reports_it(
    telemetered: Telemetered, store: SQLiteStore
) -> None:
    async with hub_on(store) as hub:
        hitl = HITLManager(store, hub, hub.spans, timeout_s=60.0)
        request = telemetry.RequestTrace(hub.spans, "s1")
        tool_run = request.tool("write_file", "c1", run=request.agent("coder"))
        await hitl.request(
            call_id="c1",
            session_id="s1",
            tool="write_file",
            arguments={"path": "a.py"},
            agent="coder",
            reason="writes",
            tool_run=tool_run,
        )
        hitl.release("c1")  # its stream went away
        request.finish(n.OUTCOME_DISCONNECTED)
        decided = await hitl.decide("c1", "REJECT")
    assert (decided.live, decided.remote) == (False, False)
    decision = telemetered.span(n.SPAN_HITL_DECISION)
    assert [e.name for e in decision.events] == [n.EVENT_HITL_DECISION_MADE]
