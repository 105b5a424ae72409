"""The real CLI server with OTLP pointed at a closed port: no request fails."""

from __future__ import annotations

from pathlib import Path

import httpx
from scripts import processes

from tests.support.server import sse_events


async def test_closed_otlp_port_fails_no_request(tmp_path: Path) -> None:
    port, closed = processes.free_port(), processes.free_port()
    env = {
        "AGENT_RUNTIME_DATA_DIR": str(tmp_path / "data"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    }
    service = processes.service_process("agent-runtime", port, env, tmp_path / "service.log")
    service.start()
    try:
        service.wait_healthy(timeout=30, interval=0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
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
        assert service.stop(timeout=20) is not None
