"""Sessions: create, read with messages, soft delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agent_runtime.api.deps import RuntimeDep
from agent_runtime.api.schemas import (
    ERROR_RESPONSES,
    CreateSessionRequest,
    MessageOut,
    SessionCreated,
    SessionOut,
)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=ERROR_RESPONSES)


@router.post("", status_code=201)
async def create_session(
    runtime: RuntimeDep, body: CreateSessionRequest | None = None
) -> SessionCreated:
    session = await runtime.sessions.create(body.session_id if body else None)
    return SessionCreated(session_id=session.session_id, created_at=session.created_at_iso)


@router.get("/{session_id}")
async def read_session(session_id: str, runtime: RuntimeDep) -> SessionOut:
    session = await runtime.sessions.get(session_id)
    messages = await runtime.sessions.messages(session_id)
    return SessionOut(
        session_id=session.session_id,
        created_at=session.created_at_iso,
        agent=session.agent,
        messages=[
            MessageOut(role=m.role, content=m.content, agent=m.agent, created_at=m.created_at)
            for m in messages
        ],
    )


@router.delete("/{session_id}")
async def delete_session(session_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    await runtime.sessions.delete(session_id)
    return {"session_id": session_id, "deleted": True}
