"""How an ASGI application's requests become traces: the server span, and the correlation
headers on every response.

:func:`instrument_asgi_app` puts OpenTelemetry's FastAPI instrumentation on the application
(one server span per request, the caller's ``traceparent`` honoured), and
:class:`CorrelationHeadersMiddleware` answers every response with its correlation id, as
``X-Correlation-ID`` and W3C ``traceresponse``, with telemetry off too (the request then
runs in a non-recording context of its own, :func:`~telemetry.correlation.untraced_context`).

The middleware is pure ASGI and must sit inside the instrumentation, so the server span is
current when the response starts; it works for streamed responses because it only touches
the ``http.response.start`` message.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.context import attach, detach
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry.correlation import (
    CORRELATION_HEADER,
    TRACERESPONSE_HEADER,
    traceresponse,
    untraced_context,
)

__all__ = ["CorrelationHeadersMiddleware", "instrument_asgi_app"]


def instrument_asgi_app(app: Any) -> None:
    """One server span per request of ``app`` (a FastAPI application).

    No span per ASGI send/receive: an SSE stream would otherwise add one per chunk. Probes
    stay traced, so that every response, theirs included, carries its correlation id.
    """
    FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])


class CorrelationHeadersMiddleware:
    """Adds the request's correlation headers to its response (see the module docstring)."""

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
