"""The one workload every framework runs: a scripted OpenAI-compatible server on 127.0.0.1.

A run is two model calls. The first (no tool result in the conversation yet) is answered
with one ``read_file`` tool call for ``notes.txt``; the second (the tool's result in the
conversation) with a short text. Both as real ``chat.completion.chunk`` server-sent events
in chunked transfer encoding, one event per HTTP chunk, the usage chunk last, then
``data: [DONE]``; the bytes are the same for every framework and every run.

The server refuses what would make the frameworks' runs differ: a request that does not
stream, a request that offers no ``read_file`` tool, a tool result without the file's
:data:`MARKER` (so the tool must really have read the file). ``GET /stats`` answers the
counts, which the harness checks after each batch: two model calls and one tool call per
run, nothing refused.

Standard library only, so it runs on any environment's interpreter:
``python -m bench.peers.workload`` prints ``{"port": N}`` once it listens and serves until
its standard input closes. Its CPU is not counted: it is its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

MARKER = "peers-workload-7f3a"
"""In the file the tool reads; the second call must carry it back in the tool result."""
FILE_NAME = "notes.txt"
FILE_TEXT = f"Notes ({MARKER}): the cache is flushed every 30 s; the queue holds 512 items.\n"
MODEL = "peers-model"
TOOL_CALL_ID = "call_read_0001"
ANSWER = ("The notes say ", "the cache is flushed ", "every 30 s ", "and the queue ", "holds 512.")

_CHUNK_HEAD = {"id": "chatcmpl-peers0001", "object": "chat.completion.chunk", "created": 1}


def _chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    return {
        **_CHUNK_HEAD,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        "usage": None,
    }


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return {
        **_CHUNK_HEAD,
        "model": MODEL,
        "choices": [],
        "usage": usage | {"total_tokens": prompt + completion},
    }


def _sse(events: list[dict[str, Any]]) -> list[bytes]:
    """Each event as one HTTP chunk (size line, data, CRLF), then [DONE] and the last chunk."""
    parts = [f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode() for event in events]
    parts.append(b"data: [DONE]\n\n")
    chunks = [f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in parts]
    return [*chunks, b"0\r\n\r\n"]


TOOL_CALL = _sse(
    [
        _chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": TOOL_CALL_ID,
                        "type": "function",
                        "function": {"name": "read_file", "arguments": ""},
                    }
                ],
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path": '}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": f'"{FILE_NAME}"}}'}}]}),
        _chunk({}, "tool_calls"),
        _usage(64, 16),
    ]
)
"""The first call's answer: one ``read_file`` call, its arguments in two fragments."""
TEXT = _sse(
    [
        _chunk({"role": "assistant", "content": ""}),
        *(_chunk({"content": piece}) for piece in ANSWER),
        _chunk({}, "stop"),
        _usage(112, 14),
    ]
)
"""The second call's answer: text in five deltas."""
_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


@dataclass(slots=True)
class Stats:
    """What the server answered since it started."""

    requests: int = 0
    tool_calls: int = 0
    answers: int = 0
    refused: int = 0
    last_refusal: str = ""


def _text(content: object) -> str:
    """A message's content as text (a string, or a list of text parts)."""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def choose(body: dict[str, Any]) -> list[bytes] | str:
    """The scripted answer to one chat-completions request body, or why it is refused."""
    if body.get("stream") is not True:
        return "the workload streams: send stream=true"
    tools = [t.get("function", {}).get("name") for t in body.get("tools") or ()]
    if "read_file" not in tools:
        return f"no read_file tool offered (tools: {tools})"
    results = [m for m in body.get("messages") or () if m.get("role") == "tool"]
    if not results:
        return TOOL_CALL
    if not any(MARKER in _text(m.get("content")) for m in results):
        return "the tool result does not carry the file's content"
    return TEXT


class WorkloadServer:
    """HTTP/1.1 with keep-alive, one request at a time per connection."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.connections: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        line = await reader.readline()
        if not line:
            return False
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = await _body(reader, headers)
        if method == "GET" and path == "/stats":
            _respond(writer, 200, asdict(self.stats))
        elif method == "POST" and path.endswith("/chat/completions"):
            self.stats.requests += 1
            answer = choose(json.loads(raw))
            if isinstance(answer, str):
                self.stats.refused += 1
                self.stats.last_refusal = answer
                _respond(writer, 400, {"error": {"message": answer, "type": "invalid_request"}})
            else:
                if answer is TOOL_CALL:
                    self.stats.tool_calls += 1
                else:
                    self.stats.answers += 1
                writer.write(_HEAD)
                for part in answer:
                    writer.write(part)
                    await writer.drain()
        else:
            _respond(writer, 404, {"error": {"message": f"no route {method} {path}"}})
        await writer.drain()
        return headers.get("connection", "").lower() != "close"


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while size := int((await reader.readline()).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readline()
        await reader.readline()
        return b"".join(parts)
    return await reader.readexactly(int(headers.get("content-length", "0")))


def _respond(writer: asyncio.StreamWriter, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(data)}\r\n\r\n".encode()
        + data
    )


async def serve() -> None:
    server = WorkloadServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    # Serve until the harness closes our standard input (or goes away).
    await loop.run_in_executor(None, sys.stdin.read)
    listener.close()
    for writer in list(server.connections):
        writer.transport.abort()  # its handler then sees the connection end, and returns
    for _ in range(100):  # at most a second
        if not server.connections:
            break
        await asyncio.sleep(0.01)


if __name__ == "__main__":
    asyncio.run(serve())
