"""Dependencies as ``Annotated`` aliases: handlers declare what they need by type."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from agent_runtime.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def require_internal_auth(
    runtime: RuntimeDep,
    x_internal_auth: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """When a key is configured, ``X-Internal-Auth`` must match it (constant-time)."""
    key = runtime.settings.internal_key
    if key is None:
        return
    supplied = (x_internal_auth or "").encode("utf-8", "replace")
    if not hmac.compare_digest(supplied, key.get_secret_value().encode("utf-8")):
        raise HTTPException(status_code=401, detail="missing or invalid X-Internal-Auth header")


AuthDep = Depends(require_internal_auth)
