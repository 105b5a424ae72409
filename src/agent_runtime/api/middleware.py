"""ASGI middleware of the service: the request body limit (the correlation headers are
the telemetry layer's, :class:`telemetry.CorrelationHeadersMiddleware`)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitMiddleware:
    """Refuse bodies over ``max_body_bytes`` with a JSON 413, before reading them whole.

    A declared ``Content-Length`` over the limit is answered at once; a chunked body is
    counted as it arrives and stopped at the limit (the error handler writes the JSON).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            response = JSONResponse(self._error(), status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(status_code=413, detail=self._error()["error"]["message"])
            return message

        await self.app(scope, receive_with_limit, send)

    def _error(self) -> dict[str, dict[str, str]]:
        return {
            "error": {
                "code": "body_too_large",
                "message": f"request body exceeds {self.max_body_bytes} bytes",
            }
        }


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
