"""With telemetry off (``OTEL_SDK_DISABLED=true``) the service keeps its correlation
promises: every response carries an ``X-Correlation-ID`` of its own, the stream's ``meta``
repeats it, a valid ``traceparent`` is continued, and the timeline and the audit trail can
be looked up by it. A real ``agent-runtime serve`` process, on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.reliability.support import running_service
from tests.support.server import sse_events

HEX32 = re.compile(r"[0-9a-f]{32}")
ZEROS = "0" * 32
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"


async def _ask(http: httpx.AsyncClient, session: str, **headers: str) -> tuple[str, str]:
    """One message; the response's X-Correlation-ID and the stream's meta correlation id."""
    async with http.stream(
        "POST",
        "/agent/message/stream",
        json={"session_id": session, "message": "Create a sorting function"},
        headers=headers,
    ) as response:
        assert response.status_code == 200
        header = response.headers["x-correlation-id"]
        assert re.fullmatch(rf"00-{header}-[0-9a-f]{{16}}-00", response.headers["traceresponse"])
        meta = ""
        async for event in sse_events(response):
            if event.event == "meta":
                meta = event.data["correlation_id"]
            elif event.event == "approval_required":
                decided = await http.post(
                    f"/v1/approvals/{event.data['call_id']}", json={"decision": "APPROVE"}
                )
                assert decided.status_code == 200
                assert decided.headers["x-correlation-id"] not in (ZEROS, header)
        return header, meta


async def test_every_request_has_its_own_correlation_id_with_telemetry_off(
    tmp_path: Path,
) -> None:
    with running_service(tmp_path / "run", tmp_path / "data", OTEL_SDK_DISABLED="true") as svc:
        async with httpx.AsyncClient(base_url=svc.url, timeout=30) as http:
            first, first_meta = await _ask(http, "off-1")
            second, _ = await _ask(http, "off-2")
            continued, continued_meta = await _ask(
                http, "off-3", traceparent=f"00-{CALLER_TRACE}-b7ad6b7169203331-01"
            )
            probe = await http.get("/healthz")
            timeline = await http.get(f"/v1/traces/{first}/timeline")
            audit = await http.get("/v1/audit", params={"session_id": "off-1"})

    assert HEX32.fullmatch(first) and first != ZEROS
    assert first_meta == first
    assert second != first
    assert continued == continued_meta == CALLER_TRACE
    assert HEX32.fullmatch(probe.headers["x-correlation-id"])
    assert timeline.status_code == 200
    events = [entry["event"] for entry in timeline.json()["entries"]]
    assert "agent.switched" in events and "hitl.approval_requested" in events
    records = audit.json()
    assert {r["event_type"] for r in records} >= {"agent_switched", "hitl_decision_made"}
    assert {r["trace_id"] for r in records} == {first}  # a decision belongs to the waiting trace
