"""The HTTP adapter: routers over the domain services, composed in one place."""

from fastapi import APIRouter

from agent_runtime.api.routes import (
    approvals,
    feedback,
    health,
    messages,
    observability,
    sessions,
)

api_router = APIRouter()
for _module in (health, messages, approvals, sessions, observability, feedback):
    api_router.include_router(_module.router)

__all__ = ["api_router"]
