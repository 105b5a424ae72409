"""Sessions: create (optionally with a system prompt), read with their transcript (paged)
and the feedback on their answers, soft delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from agent_runtime.api.deps import RuntimeDep
from agent_runtime.api.schemas import (
    ERROR_RESPONSES,
    CreateSessionRequest,
    FeedbackOut,
    MessageOut,
    SessionCreated,
    SessionOut,
    ToolCallOut,
)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=ERROR_RESPONSES)


@router.post("", status_code=201)
async def create_session(
    runtime: RuntimeDep, body: CreateSessionRequest | None = None
) -> SessionCreated:
    session = await runtime.sessions.create(
        body.session_id if body else None, body.system_prompt if body else None
    )
    return SessionCreated(session_id=session.session_id, created_at=session.created_at_iso)


@router.get("/{session_id}")
async def read_session(
    session_id: str,
    runtime: RuntimeDep,
    offset: int = Query(default=0, ge=0, le=10_000_000),
    limit: int = Query(default=100, ge=1, le=1000),
) -> SessionOut:
    """The session and ``limit`` transcript entries from ``offset``, oldest first, with the
    feedback given on its answers."""
    session = await runtime.sessions.get(session_id)
    page = await runtime.sessions.transcript_page(session_id, offset=offset, limit=limit)
    rated = await runtime.feedback.of_session(session_id)
    end = page.offset + len(page.entries)
    return SessionOut(
        session_id=session.session_id,
        created_at=session.created_at_iso,
        agent=session.agent,
        messages=[
            MessageOut(
                seq=m.seq,
                role=m.role,
                content=m.content,
                agent=m.agent,
                created_at=m.created_at,
                tool_calls=[ToolCallOut.model_validate(c) for c in m.tool_calls],
                tool_call_id=m.tool_call_id,
                meta=m.meta,
            )
            for m in page.entries
        ],
        offset=page.offset,
        total=page.total,
        next_offset=end if end < page.total else None,
        feedback=[FeedbackOut.from_record(record) for record in rated],
    )


@router.delete("/{session_id}")
async def delete_session(session_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    await runtime.sessions.delete(session_id)
    return {"session_id": session_id, "deleted": True}
