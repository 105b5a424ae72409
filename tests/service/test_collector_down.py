"""The real CLI server with OTLP pointed at a closed port: no request fails."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.server import sse_events


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_closed_otlp_port_fails_no_request(tmp_path: Path) -> None:
    port, closed = _free_port(), _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "AGENT_RUNTIME_DATA_DIR": str(tmp_path),
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    }
    cli = Path(sys.executable).with_name("agent-runtime")
    process = subprocess.Popen([str(cli), "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:  # poll readiness with a deadline
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "service did not start"
            for index in range(5):
                async with http.stream(
                    "POST",
                    "/agent/message/stream",
                    json={"session_id": f"s{index}", "message": "What is a closure?"},
                ) as response:
                    assert response.status_code == 200
                    names = [event.event async for event in sse_events(response)]
                assert names[0] == "meta" and names[-1] == "done"
    finally:
        process.terminate()
        assert process.wait(timeout=20) is not None
