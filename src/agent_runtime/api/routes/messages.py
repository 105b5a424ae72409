"""``POST /agent/message/stream``: the seed's endpoint, answered as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.sse import EventSourceResponse, ServerSentEvent

from agent_runtime.api.deps import RuntimeDep
from agent_runtime.api.schemas import SSE_ERROR_RESPONSES, MessageRequest

router = APIRouter(tags=["agent"], responses=SSE_ERROR_RESPONSES)


async def known_session(body: MessageRequest, runtime: RuntimeDep) -> MessageRequest:
    """Create the session if it is new, before the stream starts: a deleted id must get its
    404 while a status can still be sent (a generator's body runs after the 200)."""
    await runtime.sessions.get_or_create(body.session_id)
    return body


@router.post("/agent/message/stream", response_class=EventSourceResponse)
async def stream_message(
    body: Annotated[MessageRequest, Depends(known_session)], runtime: RuntimeDep
) -> AsyncIterator[ServerSentEvent]:
    """Events: ``meta`` first, then ``agent_switched``, ``text``, ``tool_call``,
    ``approval_required``, ``tool_result``, ``error``; ``done`` always last."""
    async for event in runtime.orchestrator.handle(body.session_id, body.message, body.agent):
        yield ServerSentEvent(event=event.event, data=event.data)
