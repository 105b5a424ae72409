"""The seed's query APIs over HTTP: metrics summary, audit log, one request's timeline."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query

from agent_runtime.api.deps import RuntimeDep
from agent_runtime.api.schemas import ERROR_RESPONSES, TimelineEntryOut, TimelineOut
from agent_runtime.errors import StoreUnavailable

router = APIRouter(tags=["observability"], responses=ERROR_RESPONSES)


@router.get("/v1/metrics")
async def metrics(runtime: RuntimeDep) -> dict[str, Any]:
    """``get_metrics()``: agent_switches, agent_processing, tool_executions, hitl, errors:
    what *this replica* saw since it started. ``cluster``: the deployment's facts read from
    the store (sessions, sessions running, pending approvals), the same on every replica and
    across restarts; ``null`` while the store does not answer."""
    answer = runtime.telemetry.metrics.get_metrics()
    try:
        counts = await runtime.store.cluster_counts(now=time.time())
        answer["cluster"] = dataclasses.asdict(counts)
    except StoreUnavailable:
        answer["cluster"] = None
    return answer


@router.get("/v1/audit")
async def audit(
    runtime: RuntimeDep,
    session_id: str | None = Query(default=None, max_length=128),
    event_type: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=100, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    """``get_audit_log()``; each record carries the trace id of its request."""
    if runtime.telemetry.audit is None:
        return []
    return await runtime.telemetry.audit.aget_audit_log(
        session_id=session_id, event_type=event_type, limit=limit
    )


@router.get("/v1/traces/{trace_id}/timeline")
async def timeline(
    runtime: RuntimeDep, trace_id: str = Path(pattern=r"^[0-9a-fA-F]{32}$")
) -> TimelineOut:
    """The seed's timeline view (T+ms, event, details) of one recent request."""
    entries = runtime.telemetry.timeline(trace_id)
    if entries is None:
        raise HTTPException(status_code=404, detail=f"no timeline for trace {trace_id}")
    return TimelineOut(
        trace_id=trace_id.lower(),
        entries=[
            TimelineEntryOut(offset_ms=e.offset_ms, event=e.event, details=e.details)
            for e in entries
        ],
    )
