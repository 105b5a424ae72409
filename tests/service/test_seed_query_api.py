"""The seed's query APIs, used exactly as the seed's users use them.

The system this project implements promised no breaking changes: code written against its
``MetricsCollector.get_metrics()`` and ``AuditLogger.get_audit_log()`` keeps working. The
tests below are that code: the seed's three examples (a question, "Create a sorting
function", a bug fix handed from debug to coder), then its metric reads and audit filters,
written the way its users write them, once over HTTP (``GET /v1/metrics``,
``GET /v1/audit``) and once through the Python API of a runtime in this process.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from agent_runtime.app import create_app
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from tests.service.conftest import Conversation
from tests.support.otel import Telemetered
from tests.support.server import serve

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
EDITED = {"path": "sort.py", "content": "def sort_items(items):\n    return sorted(items)\n"}


@dataclass
class Seed:
    """The seed's two query objects, whichever way they are reached."""

    get_metrics: Callable[[], Any]
    get_audit_log: Callable[..., Any]
    correlation_ids: dict[str, str]


async def _examples_over_http(client: httpx.AsyncClient) -> Seed:
    ids: dict[str, str] = {}
    conversation = Conversation(client)
    # Example 1: a question; the orchestrator hands it to ask.
    events = await conversation.send("seed-1", "What is a closure?")
    ids["example_1"] = events[0].data["correlation_id"]
    # Example 2: "Create a sorting function"; coder asks to write sort.py; APPROVE.
    conversation = Conversation(client)
    events = await conversation.send(
        "seed-2", "Create a sorting function", decide={"decision": "APPROVE"}
    )
    ids["example_2"] = events[0].data["correlation_id"]
    # Example 3: a bug fix; debug reads, hands over to coder, whose write is EDITed.
    conversation = Conversation(client)
    events = await conversation.send(
        "seed-2",
        "Fix the bug in sort.py",
        decide={"decision": "EDIT", "arguments": EDITED, "feedback": "keep it short"},
    )
    ids["example_3"] = events[0].data["correlation_id"]
    # And a provider failure, for the seed's errors section.
    events = await Conversation(client).send("seed-3", "What is a closure? [fail]")
    ids["failure"] = events[0].data["correlation_id"]

    async def get_metrics() -> Any:
        return (await client.get("/v1/metrics")).json()

    async def get_audit_log(**params: Any) -> Any:
        response = await client.get("/v1/audit", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    return Seed(get_metrics, get_audit_log, ids)


async def _run(runtime: Runtime, session_id: str, message: str, **decide: Any) -> str:
    correlation_id = ""
    async for event in runtime.orchestrator.handle(session_id, message):
        if event.event == "meta":
            correlation_id = event.data["correlation_id"]
        elif event.event == "approval_required":
            await runtime.decide(
                event.data["call_id"],
                decide["decision"],
                arguments=decide.get("arguments"),
                feedback=decide.get("feedback"),
            )
    return correlation_id


async def _examples_in_process(runtime: Runtime) -> Seed:
    ids = {
        "example_1": await _run(runtime, "seed-1", "What is a closure?"),
        "example_2": await _run(runtime, "seed-2", "Create a sorting function", decision="APPROVE"),
        "example_3": await _run(
            runtime,
            "seed-2",
            "Fix the bug in sort.py",
            decision="EDIT",
            arguments=EDITED,
            feedback="keep it short",
        ),
        "failure": await _run(runtime, "seed-3", "What is a closure? [fail]"),
    }
    metrics_collector = runtime.telemetry.metrics
    audit_logger = runtime.telemetry.audit
    assert audit_logger is not None

    async def get_metrics() -> Any:
        return metrics_collector.get_metrics()

    async def get_audit_log(**params: Any) -> Any:
        return audit_logger.get_audit_log(**params)

    return Seed(get_metrics, get_audit_log, ids)


@pytest.fixture(params=["http", "python"])
async def seed(
    request: pytest.FixtureRequest,
    telemetered: Telemetered,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Seed]:
    if request.param == "http":
        with serve(create_app(make_settings())) as running:
            async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
                yield await _examples_over_http(client)
        return
    runtime = await Runtime.start(make_settings())
    try:
        yield await _examples_in_process(runtime)
    finally:
        await runtime.close()


async def test_metrics_read_as_the_seeds_users_read_them(seed: Seed) -> None:
    metrics = await seed.get_metrics()

    assert metrics["agent_switches"]["orchestrator_to_ask"] == 1
    assert metrics["agent_switches"]["orchestrator_to_coder"] == 1
    assert metrics["agent_switches"]["orchestrator_to_debug"] == 1
    assert metrics["agent_switches"]["debug_to_coder"] == 1

    coder = metrics["agent_processing"]["coder"]
    assert coder["count"] == 2
    assert coder["success_count"] == 2 and coder["failure_count"] == 0
    assert coder["total_duration_ms"] > 0
    average_ms = coder["total_duration_ms"] / coder["count"]  # what the seed's users compute
    assert average_ms == pytest.approx(metrics["agent_avg_duration_ms"]["coder"], rel=1e-3)

    write_file = metrics["tool_executions"]["write_file"]
    assert write_file["requested"] == 2
    assert write_file["completed"] == 2
    assert write_file["failed"] == 0
    assert write_file["requires_approval"] == 2
    assert metrics["tool_executions"]["read_file"]["requires_approval"] == 0

    assert metrics["hitl_decisions"]["write_file"]["APPROVE"] == 1
    assert metrics["hitl_decisions"]["write_file"]["EDIT"] == 1
    assert metrics["hitl_decisions"]["write_file"]["REJECT"] == 0

    assert list(metrics)[:5] == [
        "agent_switches",
        "agent_processing",
        "tool_executions",
        "hitl_decisions",
        "errors",
    ]


async def test_errors_read_per_agent_and_type(seed: Seed) -> None:
    """The seed's ``errors["<agent>"]["<type>"]``: the provider broke mid-stream while the
    orchestrator was routing the failing message."""
    metrics = await seed.get_metrics()
    assert metrics["errors"] == {"orchestrator": {"agent_runtime.llm.base.ModelError": 1}}
    assert metrics["agent_processing"]["orchestrator"]["failure_count"] == 1
    (error,) = await seed.get_audit_log(event_type="agent_error")
    assert error["agent"] == "orchestrator"
    assert error["error_type"] == "agent_runtime.llm.base.ModelError"
    assert error["correlation_id"] == seed.correlation_ids["failure"]
    assert error["session_id"] == "seed-3"


async def test_every_accepted_decision_is_found_by_the_seeds_filter(seed: Seed) -> None:
    decisions = await seed.get_audit_log(event_type="hitl_decision_made")
    assert [d["decision"] for d in decisions] == ["APPROVE", "EDIT"]
    approve, edit = decisions
    for record in decisions:
        assert record["event_type"] == "hitl_decision_made"
        assert record["tool_name"] == "write_file"
        assert record["call_id"].startswith("call_")
        assert record["event_id"]
        assert ISO_UTC.match(record["timestamp"]), record["timestamp"]
        assert datetime.fromisoformat(record["timestamp"]).tzinfo is not None
    assert approve["session_id"] == "seed-2"
    assert approve["original_args"]["path"] == "sort.py"
    assert approve["modified_args"] is None
    assert edit["original_args"]["path"] == "sort.py"
    assert edit["modified_args"] == EDITED
    assert edit["feedback"] == "keep it short"
    # correlation id = the trace id of the request that waited for the human
    assert approve["correlation_id"] == seed.correlation_ids["example_2"]
    assert edit["correlation_id"] == seed.correlation_ids["example_3"]


async def test_switches_and_approvals_filtered_as_the_seed_filters_them(seed: Seed) -> None:
    switches = await seed.get_audit_log(event_type="agent_switched")
    routes = [(s["from_agent"], s["to_agent"]) for s in switches]
    assert routes == [
        ("orchestrator", "ask"),
        ("orchestrator", "coder"),
        ("orchestrator", "debug"),
        ("debug", "coder"),
    ]
    first = switches[1]
    assert first["reason"]
    assert first["confidence"] == pytest.approx(0.9)
    assert first["correlation_id"] == seed.correlation_ids["example_2"]

    required = await seed.get_audit_log(event_type="tool_approval_required")
    assert [r["tool_name"] for r in required] == ["write_file", "write_file"]
    assert required[0]["arguments"]["path"] == "sort.py"
    assert "def " in required[0]["arguments"]["content"]
    assert required[0]["reason"]
    assert {r["call_id"] for r in required} == {
        d["call_id"] for d in await seed.get_audit_log(event_type="hitl_decision_made")
    }
    requested = await seed.get_audit_log(event_type="hitl_approval_requested")
    assert [r["timeout_s"] for r in requested] == [300.0, 300.0]


async def test_audit_of_one_session_newest_ten(seed: Seed) -> None:
    records = await seed.get_audit_log(session_id="seed-2", limit=10)
    assert 0 < len(records) <= 10
    assert {r["session_id"] for r in records} == {"seed-2"}
    everything = await seed.get_audit_log(session_id="seed-2", limit=1000)
    assert records == everything[-len(records) :]  # the newest, oldest first
    assert await seed.get_audit_log(session_id="seed-1", event_type="hitl_decision_made") == []
    assert [r["event_type"] for r in await seed.get_audit_log(limit=1)] == ["agent_error"]


async def test_the_otel_event_names_filter_too(seed: Seed) -> None:
    by_seed = await seed.get_audit_log(event_type="hitl_decision_made")
    by_otel = await seed.get_audit_log(event_type="hitl.decision_made")
    assert by_otel == by_seed
    assert {r["otel_event_name"] for r in by_seed} == {"hitl.decision_made"}
