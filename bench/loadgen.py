"""Load generator: raw asyncio HTTP/1.1 over keep-alive connections (cheap enough that the
service, not the client, is the bottleneck). Closed loop: ``concurrency`` virtual users,
each sending the next request when the last one ended, bounded by count and time.

Flows: ``ask`` ("What is a closure?": orchestrator -> ask, text only) and ``coder``
("Create a sorting function": write_file; the user posts APPROVE when
``approval_required`` arrives). ``python -m bench.loadgen`` answers commands
``PORT FLOW CONCURRENCY SECONDS MAX_REQUESTS`` with counts and latencies.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from bench.proc import serve_commands

MESSAGES = {"ask": "What is a closure?", "coder": "Create a sorting function"}
_ids = itertools.count()


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, body: dict[str, Any]) -> tuple[int, asyncio.StreamReader]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        payload = json.dumps(body).encode()
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), self.reader

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _chunks(reader: asyncio.StreamReader) -> Any:
    """Yield the decoded chunks of a chunked body until the last one."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return
        yield data[:-2]


async def _post_json(conn: Connection, path: str, body: dict[str, Any]) -> int:
    if conn.writer is None or conn.writer.is_closing():
        conn.reader, conn.writer = await asyncio.open_connection("127.0.0.1", conn.port)
    assert conn.reader is not None
    payload = json.dumps(body).encode()
    conn.writer.write(
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    head = await conn.reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await conn.reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def one_request(stream: Connection, approvals: Connection, flow: str) -> str:
    """One message, streamed to its ``done`` event; returns the outcome."""
    body = {"session_id": f"load-{next(_ids)}-{time.monotonic_ns()}", "message": MESSAGES[flow]}
    status, reader = await stream.request("/agent/message/stream", body)
    if status != 200:
        raise RuntimeError(f"stream answered {status}")
    buffer, outcome = "", "none"
    async for chunk in _chunks(reader):
        buffer += chunk.decode().replace("\r\n", "\n")
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
            event = fields.get("event")
            if event == "approval_required":
                call_id = json.loads(fields["data"])["call_id"]
                answer = await _post_json(
                    approvals, f"/v1/approvals/{call_id}", {"decision": "APPROVE"}
                )
                if answer != 200:
                    raise RuntimeError(f"approval answered {answer}")
            elif event == "done":
                outcome = json.loads(fields["data"])["outcome"]
    return outcome


async def run_load(
    port: int, flow: str, concurrency: int, seconds: float, max_requests: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    budget = itertools.count()

    async def user() -> None:
        stream, approvals = Connection(port), Connection(port)
        try:
            while time.monotonic() < deadline and next(budget) < max_requests:
                start = time.perf_counter()
                try:
                    outcome = await one_request(stream, approvals, flow)
                    if outcome != "completed":
                        errors.append(outcome)
                    latencies.append((time.perf_counter() - start) * 1e3)
                except (OSError, RuntimeError, ValueError, asyncio.IncompleteReadError) as exc:
                    errors.append(type(exc).__name__)
                    await stream.close()
                    await approvals.close()
                    stream, approvals = Connection(port), Connection(port)
        finally:
            await stream.close()
            await approvals.close()

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "latencies_ms": latencies,
        "errors": errors[:20],
        "n_errors": len(errors),
        "elapsed_s": elapsed,
    }


def main() -> None:
    loop = asyncio.new_event_loop()

    def handle(command: str) -> dict[str, Any]:
        port, flow, concurrency, seconds, max_requests = command.split()
        return loop.run_until_complete(
            run_load(int(port), flow, int(concurrency), float(seconds), int(max_requests))
        )

    serve_commands(handle, {"ready": True})


if __name__ == "__main__":
    main()
