"""A rating end to end through the real Collector: the service as a process, one curl-like
POST of the docs' line, then the Collector's audit file holds the ``gen_ai.evaluation.result``
record in the rated trace, under the ``agent.request`` span Jaeger shows for it, and
Prometheus has the score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import (
    ASK,
    Service,
    TelemetryStack,
    hex_id,
    run_flow,
    wait_for_series,
    wait_for_trace,
    wait_until,
)

pytestmark = pytest.mark.e2e


def _log_records(path: Path) -> list[dict[str, Any]]:
    """Every OTLP/JSON log record of the audit file (and its rotations)."""
    found: list[dict[str, Any]] = []
    for file in sorted(path.parent.glob(f"{path.stem}*{path.suffix}")):
        for line in file.read_text(errors="replace").splitlines():
            try:
                payload = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line still being written
            for resource_logs in payload.get("resourceLogs", []):
                for scope_logs in resource_logs.get("scopeLogs", []):
                    found.extend(scope_logs.get("logRecords", []))
    return found


def _attributes(record: dict[str, Any]) -> dict[str, Any]:
    return {
        a["key"]: next(iter(a.get("value", {}).values()), None)
        for a in record.get("attributes", [])
    }


async def test_a_rating_reaches_the_collector_in_the_rated_trace(
    service: Service, telemetry_stack: TelemetryStack
) -> None:
    flow = await run_flow(service.base_url, ASK)
    flow.assert_ok()
    trace = wait_for_trace(telemetry_stack, flow.correlation_id, span_names=["agent.request"])
    (request_span,) = [s for s in trace["spans"] if s["operationName"] == "agent.request"]

    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
        response = await client.post(
            f"/v1/traces/{flow.correlation_id}/feedback",
            json={"score": 1, "label": "up", "comment": "clear answer"},
        )
        assert response.status_code == 201, response.text
        metrics = (await client.get("/v1/metrics")).json()
    stored = response.json()
    assert stored["span_id"] == hex_id(request_span["spanID"])
    assert metrics["feedback"]["ask"]["count"] >= 1

    def shipped() -> dict[str, Any] | None:
        for record in _log_records(telemetry_stack.audit_file):
            if _attributes(record).get("agent_runtime.feedback.id") == stored["feedback_id"]:
                return record
        return None

    record = wait_until(shipped, timeout=60, what="the rating in the Collector's audit file")
    assert record["eventName"] == "gen_ai.evaluation.result"
    assert hex_id(record["traceId"]) == flow.correlation_id
    assert hex_id(record["spanId"]) == hex_id(request_span["spanID"])
    attributes = _attributes(record)
    assert attributes["gen_ai.evaluation.name"] == "user_feedback"
    assert float(attributes["gen_ai.evaluation.score.value"]) == 1.0
    assert attributes["gen_ai.evaluation.score.label"] == "up"
    assert attributes["agent_runtime.audit.event_type"] == "user_feedback"
    assert "gen_ai.evaluation.explanation" not in attributes  # content capture is off

    series = wait_for_series(
        telemetry_stack,
        'gen_ai_evaluation_score_count{gen_ai_evaluation_name="user_feedback",'
        'gen_ai_evaluation_score_label="up",gen_ai_agent_name="ask"}',
    )
    assert all(s["metric"].get("job") == "agent-runtime" for s in series), series
    assert not any("session" in key or "trace" in key for s in series for key in s["metric"])
