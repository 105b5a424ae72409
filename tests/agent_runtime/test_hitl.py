"""HITLManager without HTTP: waiting, deciding, timing out, resuming exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import telemetry
from agent_runtime.errors import (
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    EditRequiresArguments,
    InvalidEditArguments,
    ToolError,
)
from agent_runtime.hitl import ApprovalsClosed, HITLManager, Resolution
from agent_runtime.store import SessionRecord, SQLiteStore
from telemetry import names as n
from tests.support.fixtures import hub_on
from tests.support.otel import Telemetered


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _validate(tool: str, arguments: dict[str, object]) -> dict[str, object]:
    if "path" not in arguments:
        raise ToolError("path is required")
    return dict(arguments)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "hitl.db") as opened:
        await opened.insert_session(SessionRecord("s1", 1.0))
        yield opened


@pytest.fixture
async def hub(telemetered: Telemetered, store: SQLiteStore) -> AsyncIterator[telemetry.Telemetry]:
    async with hub_on(store) as started:
        yield started


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hitl(store: SQLiteStore, hub: telemetry.Telemetry, clock: Clock) -> HITLManager:
    return HITLManager(
        store, hub, hub.spans, timeout_s=60.0, validate_arguments=_validate, clock=clock
    )


async def _gone(hitl: HITLManager, record: object) -> None:
    """The stream that waited went away (its task cancelled, as a client disconnect does)."""
    waiting = asyncio.ensure_future(hitl.wait(record))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def _request(hitl: HITLManager, hub: telemetry.Telemetry, call_id: str = "c1"):  # type: ignore[no-untyped-def]
    request = telemetry.RequestTrace(hub.spans, "s1")
    run = request.agent("coder")
    tool_run = request.tool("write_file", call_id, run=run)
    record = await hitl.request(
        call_id=call_id,
        session_id="s1",
        tool="write_file",
        arguments={"path": "a.py", "content": "x"},
        agent="coder",
        reason="writes",
        tool_run=tool_run,
    )
    return request, tool_run, record


async def test_a_decision_reaches_the_waiting_stream_and_lands_on_its_span(
    hitl: HITLManager, hub: telemetry.Telemetry, telemetered: Telemetered, clock: Clock
) -> None:
    request, tool_run, record = await _request(hitl, hub)
    waiting = asyncio.ensure_future(hitl.wait(record))
    await asyncio.sleep(0)
    assert hitl.waiting_here("c1")
    clock.now += 5
    decided = await hitl.decide("c1", "EDIT", arguments={"path": "b.py"}, feedback="rename")
    assert decided.live
    resolution = await waiting
    assert resolution == Resolution("EDIT", {"path": "b.py"}, "rename", "decided", 5.0)
    assert not hitl.waiting_here("c1")
    tool_run.stop("completed")
    request.finish(n.OUTCOME_COMPLETED)
    events = [e.name for e in telemetered.span("execute_tool write_file").events]
    assert events == [
        n.EVENT_TOOL_APPROVAL_REQUIRED,
        n.EVENT_HITL_APPROVAL_REQUESTED,
        n.EVENT_HITL_DECISION_MADE,
    ]
    decision = telemetered.span(n.SPAN_HITL_DECISION)
    assert decision.links[0].context.span_id == tool_run.span_context.span_id


async def test_without_a_waiter_the_decision_is_recorded_for_the_caller_to_resume(
    hitl: HITLManager, hub: telemetry.Telemetry
) -> None:
    request, _, record = await _request(hitl, hub)
    await _gone(hitl, record)
    request.finish(n.OUTCOME_DISCONNECTED)
    assert not hitl.waiting_here("c1")
    decided = await hitl.decide("c1", "APPROVE")
    assert not decided.live
    assert decided.record.call_id == "c1"
    assert decided.resolution.approved
    claims = await asyncio.gather(*(hitl.claim_resume("c1") for _ in range(5)))
    assert claims.count(True) == 1


async def test_refusals_record_nothing(hitl: HITLManager, hub: telemetry.Telemetry) -> None:
    with pytest.raises(ApprovalNotFound):
        await hitl.decide("nope", "APPROVE")
    await _request(hitl, hub)
    with pytest.raises(EditRequiresArguments):
        await hitl.decide("c1", "EDIT")
    with pytest.raises(InvalidEditArguments, match="path is required"):
        await hitl.decide("c1", "EDIT", arguments={"content": "y"})
    assert [r.call_id for r in await hitl.pending("s1")] == ["c1"]
    await hitl.decide("c1", "REJECT")
    with pytest.raises(ApprovalAlreadyDecided):
        await hitl.decide("c1", "APPROVE")
    assert await hitl.pending("s1") == []


async def test_a_late_decision_finds_the_approval_timed_out(
    hitl: HITLManager, hub: telemetry.Telemetry, clock: Clock, store: SQLiteStore
) -> None:
    _, _, record = await _request(hitl, hub)
    waiting = asyncio.ensure_future(hitl.wait(record))
    await asyncio.sleep(0)
    clock.now += 61
    assert await hitl.expired() == []  # its stream still waits, and times out by itself
    hitl.close()
    with pytest.raises(ApprovalsClosed):
        await waiting
    assert [r.call_id for r in await hitl.expired()] == ["c1"]
    with pytest.raises(ApprovalExpired):
        await hitl.decide("c1", "APPROVE")
    record = await store.get_approval("c1")
    assert record is not None and (record.decision, record.outcome) == ("REJECT", "timeout")
    assert await hitl.expired() == []
    assert Resolution.of(record).outcome == "timeout"


async def test_the_waiting_stream_times_out_itself(
    store: SQLiteStore, hub: telemetry.Telemetry
) -> None:
    hitl = HITLManager(store, hub, hub.spans, timeout_s=0.05)
    _, _, record = await _request(hitl, hub)
    resolution = await hitl.wait(record)
    assert (resolution.decision, resolution.outcome) == ("REJECT", "timeout")
    assert (await store.get_approval("c1")).outcome == "timeout"  # type: ignore[union-attr]


async def test_shutdown_ends_the_waiting_streams_and_keeps_the_approval(
    hitl: HITLManager, hub: telemetry.Telemetry
) -> None:
    _, _, record = await _request(hitl, hub)
    waiting = asyncio.ensure_future(hitl.wait(record))
    await asyncio.sleep(0)
    hitl.close()
    with pytest.raises(ApprovalsClosed):
        await waiting
    assert [r.call_id for r in await hitl.pending()] == ["c1"]
