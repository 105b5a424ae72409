"""Liveness and readiness; no authentication, so orchestrators can probe them."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from agent_runtime.api.deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(runtime: RuntimeDep) -> dict[str, str] | JSONResponse:
    if await runtime.store.ping():
        return {"status": "ready"}
    body = {"error": {"code": "not_ready", "message": "the store is not reachable"}}
    return JSONResponse(body, status_code=503)
