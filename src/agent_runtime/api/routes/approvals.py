"""Human decisions on pending tool calls."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from agent_runtime.api.deps import RuntimeDep
from agent_runtime.api.schemas import (
    ERROR_RESPONSES,
    SESSION_ID_PATTERN,
    ApprovalOut,
    DecisionRequest,
)

router = APIRouter(prefix="/v1/approvals", tags=["approvals"], responses=ERROR_RESPONSES)


@router.post("/{call_id}")
async def decide(call_id: str, body: DecisionRequest, runtime: RuntimeDep) -> dict[str, Any]:
    """APPROVE, EDIT (with ``arguments``) or REJECT; 404 unknown, 409 already decided."""
    return await runtime.decide(
        call_id, body.decision, arguments=body.arguments, feedback=body.feedback
    )


@router.get("")
async def pending(
    runtime: RuntimeDep, session_id: str | None = Query(default=None, pattern=SESSION_ID_PATTERN)
) -> list[ApprovalOut]:
    """Approvals still waiting for a human (they survive a restart)."""
    return [ApprovalOut.from_record(r) for r in await runtime.hitl.pending(session_id)]
