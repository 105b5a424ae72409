"""A real uvicorn server on 127.0.0.1 in a background thread, and an SSE client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


@dataclass
class RunningServer:
    app: FastAPI
    url: str
    server: uvicorn.Server


@contextmanager
def serve(app: FastAPI, *, startup_timeout_s: float = 15.0) -> Iterator[RunningServer]:
    """Run ``app`` on a free port until the block ends (lifespan included)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:  # poll with a deadline: uvicorn has no start event
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(app, f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass(frozen=True)
class SSE:
    event: str
    data: dict[str, Any]


async def sse_events(response: httpx.Response) -> AsyncIterator[SSE]:
    """Parse a ``text/event-stream`` response into events (comments skipped)."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield SSE(event, json.loads("\n".join(data)))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
