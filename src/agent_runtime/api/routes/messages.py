"""``POST /agent/message/stream``: the seed's endpoint, answered as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent

from agent_runtime.api.deps import AuthDep, RuntimeDep
from agent_runtime.api.schemas import MessageRequest

router = APIRouter(tags=["agent"], dependencies=[AuthDep])


@router.post("/agent/message/stream", response_class=EventSourceResponse)
async def stream_message(
    body: MessageRequest, runtime: RuntimeDep
) -> AsyncIterator[ServerSentEvent]:
    """Events: ``meta`` first, then ``agent_switched``, ``text``, ``tool_call``,
    ``approval_required``, ``tool_result``, ``error``; ``done`` always last."""
    await runtime.sessions.get_or_create(body.session_id)  # a deleted id fails before streaming
    async for event in runtime.orchestrator.handle(body.session_id, body.message, body.agent):
        yield ServerSentEvent(event=event.event, data=event.data)
