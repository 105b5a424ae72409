"""Human decisions on pending tool calls, and the runs they resume."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.sse import format_sse_event

from agent_runtime.api.deps import RuntimeDep
from agent_runtime.api.schemas import (
    ERROR_RESPONSES,
    SESSION_ID_PATTERN,
    ApprovalOut,
    DecisionRequest,
)
from agent_runtime.orchestrator import Run
from agent_runtime.runtime import summarise
from agent_runtime.settings import Settings

_USER_ID_CHARS = 256

router = APIRouter(prefix="/v1/approvals", tags=["approvals"], responses=ERROR_RESPONSES)

_DECIDE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "The decision is recorded. JSON by default: where the run resumed (`resumed`: "
            "`stream` when a stream waits for it, `here` when this request ran it to its "
            "end, with its `outcome`, final `text`, the decided call's `result` and its "
            "`trace_id`). With `Accept: text/event-stream` a run resumed here streams its "
            "events instead (`meta` first, `done` last)."
        ),
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.post("/{call_id}", response_model=None, responses=_DECIDE_RESPONSES)
async def decide(
    call_id: str,
    body: DecisionRequest,
    runtime: RuntimeDep,
    request: Request,
    accept: str | None = Header(default=None),
) -> dict[str, Any] | StreamingResponse:
    """APPROVE, EDIT (with ``arguments``) or REJECT; 404 unknown, 409 already decided or
    expired, 422 EDIT without (or with invalid) arguments. Who decided comes from the
    trusted gateway's user header (``AGENT_RUNTIME_USER_HEADER``), honoured only behind the
    internal key."""
    outcome = await runtime.decide_and_resume(
        call_id,
        body.decision,
        arguments=body.arguments,
        feedback=body.feedback,
        decided_by=_decided_by(runtime.settings, request),
    )
    if outcome.run is None:
        return outcome.answer
    if accept is not None and "text/event-stream" in accept:
        return StreamingResponse(
            _sse(outcome.run),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return await summarise(outcome.answer, outcome.run)


def _decided_by(settings: Settings, request: Request) -> str | None:
    """The gateway's user id; ignored without the internal key (anyone could send it)."""
    if settings.internal_key is None:
        return None
    value = request.headers.get(settings.user_header, "").strip()
    return value[:_USER_ID_CHARS] or None


async def _sse(run: Run) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(run):
        async for event in run:
            yield format_sse_event(data_str=json.dumps(event.data), event=event.event)


@router.get("")
async def pending(
    runtime: RuntimeDep, session_id: str | None = Query(default=None, pattern=SESSION_ID_PATTERN)
) -> list[ApprovalOut]:
    """Approvals still waiting for a human (they survive a restart)."""
    return [ApprovalOut.from_record(r) for r in await runtime.hitl.pending(session_id)]
