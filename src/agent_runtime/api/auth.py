"""``X-Internal-Auth``: checked before anything else reads the request.

A pure ASGI middleware rather than a dependency, because FastAPI parses the body before
dependencies run: an unauthenticated caller must get 401, not the parser's opinion of its
JSON. The key is compared in constant time; the 401 body says nothing about the key.
"""

from __future__ import annotations

import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

HEADER = b"x-internal-auth"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
"""Probes and the schema stay open so orchestrators and clients can discover the service."""


class InternalAuthMiddleware:
    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self._key = key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        supplied = b""
        for name, value in scope.get("headers", []):
            if name == HEADER:
                supplied = value
                break
        if hmac.compare_digest(supplied, self._key):
            await self.app(scope, receive, send)
            return
        body = {
            "error": {
                "code": "unauthorized",
                "message": "missing or invalid X-Internal-Auth header",
            }
        }
        await JSONResponse(body, status_code=401)(scope, receive, send)
