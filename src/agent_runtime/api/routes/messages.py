"""``POST /agent/message/stream``: the seed's endpoint, answered as Server-Sent Events."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.sse import EventSourceResponse, ServerSentEvent

from agent_runtime.api.deps import RuntimeDep
from agent_runtime.api.schemas import SSE_ERROR_RESPONSES, MessageRequest
from agent_runtime.orchestrator import Run

router = APIRouter(tags=["agent"], responses=SSE_ERROR_RESPONSES)


async def accepted_run(body: MessageRequest, runtime: RuntimeDep) -> Run:
    """Accept the message before the stream starts, so that a refusal gets its status: a
    generator's body runs after the 200 (404 deleted session, 409 a run in progress or an
    approval pending)."""
    return await runtime.orchestrator.begin(body.session_id, body.message, body.agent)


@router.post("/agent/message/stream", response_class=EventSourceResponse)
async def stream_message(
    body: MessageRequest, run: Annotated[Run, Depends(accepted_run)]
) -> AsyncIterator[ServerSentEvent]:
    """Events: ``meta`` first, then ``agent_switched``, ``text``, ``tool_call``,
    ``approval_required``, ``tool_result``, ``error``; ``done`` always last."""
    async with contextlib.aclosing(run):
        async for event in run:
            yield ServerSentEvent(event=event.event, data=event.data)
