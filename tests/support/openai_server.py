"""A tiny real HTTP/1.1 server on 127.0.0.1 that plays an OpenAI chat-completions endpoint.

Why hand-rolled on ``asyncio.start_server``: the tests need control of the bytes on the wire
(SSE events in chunked transfer encoding, a connection dropped between two chunks), which a
framework would hide. Each test queues the responses it wants, or gives a ``responder``
that answers from the request (:func:`scripted_responder` answers as the offline scripted
model does, over the real wire); the server records every request it received, so tests can
assert the exact request body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.llm._script import FailReply, decide
from agent_runtime.llm.scripted import encode_chunks

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests"}
_REASONS |= {500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it: ``body`` parsed, ``raw`` its bytes."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""


@dataclass
class CannedResponse:
    """What to answer: status, headers and body parts, each sent as one HTTP chunk.

    ``drop_after`` closes the connection after that many parts, before the terminating
    zero-length chunk: the client sees an incomplete body, i.e. a provider gone mid-stream.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    parts: list[bytes] = field(default_factory=list)
    drop_after: int | None = None


def sse(events: list[dict[str, Any]], *, done: bool = True) -> CannedResponse:
    """An SSE response: one ``data:`` event per object, then ``data: [DONE]``."""
    parts = [f"data: {json.dumps(event)}\n\n".encode() for event in events]
    if done:
        parts.append(b"data: [DONE]\n\n")
    return CannedResponse(headers={"content-type": "text/event-stream"}, parts=parts)


def json_response(status: int, body: dict[str, Any]) -> CannedResponse:
    """A JSON response (an error body, typically)."""
    return CannedResponse(
        status=status,
        headers={"content-type": "application/json"},
        parts=[json.dumps(body).encode()],
    )


def chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish_reason: str | None = None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk``; with ``usage`` and no delta, the final usage chunk."""
    choices = []
    if delta is not None or finish_reason is not None:
        choices = [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}]
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "test-model",
        "choices": choices,
        "usage": usage,
    }


Responder = Callable[["RecordedRequest"], CannedResponse]


def scripted_responder(request: RecordedRequest) -> CannedResponse:
    """The offline scripted model's answer to ``request``, as a real server streams it
    (``[fail]`` drops the connection after the first text chunks)."""
    body = request.body
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    tools = [t for t in body.get("tools", []) if isinstance(t, dict)]
    reply = decide(messages, tools)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    prompt_tokens = max(1, len(json.dumps(messages)) // 4)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 7}
    usage["total_tokens"] = prompt_tokens + 7
    chunks = encode_chunks(f"chatcmpl-{digest[:20]}", str(body.get("model")), reply, usage)
    response = sse(chunks)
    if isinstance(reply, FailReply):
        response.drop_after = 2
    return response


class ChatServer:
    """The server. Use as ``async with ChatServer() as server``; ``server.base_url`` ends in /v1.

    ``responder``: answers every request that finds no queued response.
    """

    def __init__(self, responder: Responder | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        self._responses: list[CannedResponse] = []
        self._responder = responder
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/v1"

    def respond(self, *responses: CannedResponse) -> None:
        """Queue responses, answered in order, one per request."""
        self._responses.extend(responses)

    async def __aenter__(self) -> ChatServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            if self._responses:
                response = self._responses.pop(0)
            elif self._responder is not None:
                response = self._responder(request)
            else:
                response = json_response(500, {})
            await self._write_response(writer, response)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
        request_line = await reader.readline()
        if not request_line:
            return None
        method, path, _ = request_line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        return RecordedRequest(method, path, headers, json.loads(raw) if raw else {}, raw)

    @staticmethod
    async def _write_response(writer: asyncio.StreamWriter, response: CannedResponse) -> None:
        head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
        head += [f"{name}: {value}" for name, value in response.headers.items()]
        head += ["transfer-encoding: chunked", "connection: close", "", ""]
        writer.write("\r\n".join(head).encode("latin-1"))
        for index, part in enumerate(response.parts):
            if response.drop_after is not None and index == response.drop_after:
                await writer.drain()
                return  # the caller closes the socket: no terminating chunk
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
