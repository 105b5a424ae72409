"""ASGI middleware: correlation headers on every response, and the request body limit.

Every response carries its correlation id: ``X-Correlation-ID`` and W3C ``traceresponse``,
with telemetry off too (the request then runs in a non-recording context of its own).

A pure ASGI middleware, inside the OpenTelemetry one, so the server span is current when
the response starts; it works for streamed responses because it only touches the
``http.response.start`` message.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import attach, detach
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry import CORRELATION_HEADER, TRACERESPONSE_HEADER, traceresponse, untraced_context


class CorrelationHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        untraced = untraced_context(Headers(scope=scope))
        token = attach(untraced) if untraced is not None else None
        context = trace.get_current_span().get_span_context()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and context.is_valid:
                headers = list(message.get("headers", []))
                headers.append(
                    (
                        CORRELATION_HEADER.lower().encode(),
                        trace.format_trace_id(context.trace_id).encode(),
                    )
                )
                headers.append((TRACERESPONSE_HEADER.encode(), traceresponse(context).encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if token is not None:
                detach(token)


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
