"""The model for benchmark 7: an OpenAI-compatible chat-completions server in a process of its
own, on 127.0.0.1, so its CPU is never counted as the service's.

It answers as a provider does over HTTP/1.1 keep-alive: ``chat.completion.chunk`` server-sent
events in chunked transfer encoding, one event per HTTP chunk, usage last, then
``data: [DONE]``. What it says:

- the router (the first system message is the orchestrator's prompt): one chunk, the JSON
  routing decision ``{"agent": "coder", ...}``;
- any other agent: text in ``N`` chunks, ``N`` from a ``[chunks=N]`` marker in the last user
  message (:data:`DEFAULT_CHUNKS` without one), each chunk a few words.

It records what each call carried (messages, tool calls, bytes of the body and of its
``messages``), so the harness checks that the whole transcript reached the model and knows
how many kilobytes it was: ``GET /stats`` answers the calls since the last ``GET /stats``.

Standard library only: ``python -m bench.model_server`` prints ``{"port": N}`` once it
listens and serves until its standard input closes; :class:`ModelProcess` starts it so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import urllib.request
from typing import Any

from bench.proc import ROOT, python_env

DEFAULT_CHUNKS = 8
MODEL = "bench-model"
ROUTE = {"agent": "coder", "confidence": 0.9, "reason": "the benchmark routes to coder"}
_ROUTER_PROMPT = "you are the orchestrator agent"
_CHUNKS_RE = re.compile(r"\[chunks=(\d+)\]")
_WORDS = ("the ", "transcript ", "grows ", "with ", "every ", "turn, ", "and ", "so ")
_HEAD = {"id": "chatcmpl-bench0001", "object": "chat.completion.chunk", "created": 1}


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(payload: dict[str, Any]) -> bytes:
    return _http_chunk(f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode())


def _payload(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**_HEAD, "model": MODEL, "choices": [choice], "usage": None}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return _event(_payload(delta, finish))


def text_chunk_json(index: int) -> str:
    """The JSON of an answer's ``index``-th text chunk, as the ``data:`` line carries it
    (what the per-chunk baseline parses)."""
    return json.dumps(_payload({"content": _WORDS[index % len(_WORDS)]}), separators=(",", ":"))


def answer(body: dict[str, Any]) -> list[bytes]:
    """The HTTP chunks of the answer to one request body."""
    messages = body.get("messages") or []
    first = messages[0].get("content") if messages and isinstance(messages[0], dict) else ""
    if str(first or "").lower().startswith(_ROUTER_PROMPT):
        parts = [_chunk({"role": "assistant", "content": json.dumps(ROUTE)})]
        completion = 20
    else:
        last_user = next(
            (m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), ""
        )
        found = _CHUNKS_RE.search(str(last_user))
        n = int(found.group(1)) if found else DEFAULT_CHUNKS
        parts = [_chunk({"role": "assistant", "content": ""})]
        parts.extend(_http_chunk(f"data: {text_chunk_json(i)}\n\n".encode()) for i in range(n))
        completion = n
    parts.append(_chunk({}, "stop"))
    prompt = max(1, len(json.dumps(messages)) // 4)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    usage["total_tokens"] = prompt + completion
    parts.append(_event({**_HEAD, "model": MODEL, "choices": [], "usage": usage}))
    parts.append(_http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return parts


def describe(raw: bytes, body: dict[str, Any]) -> dict[str, Any]:
    """What one call carried, as ``GET /stats`` reports it."""
    messages = body.get("messages") or []
    return {
        "body_bytes": len(raw),
        "messages": len(messages),
        "messages_bytes": len(
            json.dumps(messages, separators=(",", ":"), ensure_ascii=False).encode()
        ),
        "tool_calls": sum(len(m.get("tool_calls") or ()) for m in messages),
        "tool_results": sum(1 for m in messages if m.get("role") == "tool"),
        "router": str((messages[0].get("content") if messages else "") or "")
        .lower()
        .startswith(_ROUTER_PROMPT),
    }


class ModelServer:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET" and path.startswith("/stats"):
                    calls, self.calls = self.calls, []
                    await self._json(writer, {"calls": calls})
                elif method == "POST" and path.endswith("/chat/completions"):
                    body = json.loads(raw)
                    self.calls.append(describe(raw, body))
                    await self._stream(writer, answer(body))
                else:
                    await self._json(writer, {"error": {"message": f"no route {path}"}}, 404)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # the client went away, or the server is shutting down
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _stream(writer: asyncio.StreamWriter, parts: list[bytes]) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        for part in parts:
            writer.write(part)
            await writer.drain()

    @staticmethod
    async def _json(writer: asyncio.StreamWriter, doc: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(doc).encode()
        writer.write(
            f"HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n\r\n".encode()
            + data
        )
        await writer.drain()


class ModelProcess:
    """:mod:`bench.model_server` in its own process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.model_server"],
            cwd=ROOT,
            env=python_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port: int = json.loads(self.proc.stdout.readline())["port"]

    def calls(self) -> list[dict[str, Any]]:
        """The model calls answered since the last time this was asked."""
        url = f"http://127.0.0.1:{self.port}/stats"
        with urllib.request.urlopen(url, timeout=10) as answer:
            calls: list[dict[str, Any]] = json.loads(answer.read())["calls"]
        return calls

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _serve() -> None:
    server = ModelServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    print(json.dumps({"port": listener.sockets[0].getsockname()[1]}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the harness closes our stdin
    listener.close()


if __name__ == "__main__":
    asyncio.run(_serve())
