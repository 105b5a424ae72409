"""Names (docs/architecture.md): every ``gen_ai.*`` key and metric the service emits is a GenAI
semantic-convention name, except the documented pending handoff keys and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from telemetry import names as n
from tests.support.otel import Telemetered

PENDING_ATTRIBUTES = {n.GEN_AI_HANDOFF_FROM_AGENT, n.GEN_AI_HANDOFF_TO_AGENT}
PENDING_METRICS = {
    n.METRIC_INVOKE_AGENT_DURATION,
    n.METRIC_EXECUTE_TOOL_DURATION,
    n.METRIC_EVALUATION_SCORE,
}


def _constants(module: ModuleType) -> set[str]:
    return {
        value
        for name, value in vars(module).items()
        if not name.startswith("_") and isinstance(value, str)
    }


SEMCONV_ATTRIBUTES = _constants(gen_ai_attributes)
SEMCONV_METRICS = _constants(gen_ai_metrics)


async def _run(runtime: Runtime, session_id: str, message: str) -> list[str]:
    seen: list[str] = []
    async for event in runtime.orchestrator.handle(session_id, message):
        seen.append(event.event)
        if event.event == "meta":
            seen.append(event.data["correlation_id"])
        if event.event == "approval_required":
            await runtime.decide(event.data["call_id"], "APPROVE", arguments=None, feedback=None)
    return seen


@pytest.fixture
async def scripted_flow(
    capture_on: None, telemetered: Telemetered, tmp_path: Path
) -> AsyncIterator[Telemetered]:
    """The demo's story (orchestrator → coder, write_file approved), the debug → coder
    handoff and a person's rating of the first answer (with a comment, content capture on),
    on the real runtime with the scripted model."""
    runtime = await Runtime.start(Settings(data_dir=tmp_path))
    try:
        first = await _run(runtime, "names-1", "Create a sorting function")
        second = await _run(runtime, "names-2", "Fix the bug in sort.py")
        await runtime.feedback.rate(first[1], score=1, label="up", comment="thanks")
        await runtime.telemetry.flush()
    finally:
        await runtime.close()
    assert first[-1] == "done" and "approval_required" in first
    assert second[-1] == "done"
    yield telemetered


def _attribute_keys(telemetered: Telemetered) -> set[str]:
    keys: set[str] = set()
    for span in telemetered.spans():
        keys |= set(span.attributes or {})
        for event in span.events:
            keys |= set(event.attributes or {})
        for link in span.links:
            keys |= set(link.attributes or {})
    for log in telemetered.logs():
        keys |= set(log.log_record.attributes or {})
    for _, points in _metric_points(telemetered):
        for attributes in points:
            keys |= set(attributes)
    return keys


def _metric_points(telemetered: Telemetered) -> list[tuple[str, list[dict[str, Any]]]]:
    data = telemetered.metric_reader.get_metrics_data()
    found: list[tuple[str, list[dict[str, Any]]]] = []
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = [dict(point.attributes or {}) for point in metric.data.data_points]
                found.append((metric.name, points))
    return found


def test_names_module_reexports_semconv_values() -> None:
    for key in (
        n.GEN_AI_OPERATION_NAME,
        n.GEN_AI_AGENT_NAME,
        n.GEN_AI_CONVERSATION_ID,
        n.GEN_AI_TOOL_NAME,
        n.GEN_AI_TOOL_CALL_ID,
        n.GEN_AI_TOOL_CALL_ARGUMENTS,
        n.GEN_AI_PROVIDER_NAME,
        n.GEN_AI_INPUT_MESSAGES,
        n.GEN_AI_EVALUATION_NAME,
        n.GEN_AI_EVALUATION_SCORE_VALUE,
        n.GEN_AI_EVALUATION_SCORE_LABEL,
        n.GEN_AI_EVALUATION_EXPLANATION,
    ):
        assert key in SEMCONV_ATTRIBUTES, key
    assert {n.OPERATION_INVOKE_AGENT, n.OPERATION_EXECUTE_TOOL, n.OPERATION_CHAT} == {
        "invoke_agent",
        "execute_tool",
        "chat",
    }
    assert n.ERROR_TYPE == "error.type"
    assert n.SESSION_ID == "session.id"
    assert {n.METRIC_CLIENT_OPERATION_DURATION, n.METRIC_CLIENT_TOKEN_USAGE} <= SEMCONV_METRICS
    assert not PENDING_ATTRIBUTES & SEMCONV_ATTRIBUTES  # drop the exception once semconv has them
    assert not PENDING_METRICS & SEMCONV_METRICS


def test_project_names_stay_in_the_project_namespace() -> None:
    project = [
        value
        for name, value in vars(n).items()
        if name.isupper()
        and isinstance(value, str)
        and (name.startswith("METRIC_AGENT") or name.startswith("METRIC_TOOL"))
    ]
    assert project
    assert all(value.startswith("agent_runtime.") for value in project)


def test_every_gen_ai_attribute_key_is_a_semconv_name(scripted_flow: Telemetered) -> None:
    keys = _attribute_keys(scripted_flow)
    gen_ai = {key for key in keys if key.startswith("gen_ai.")}
    assert {n.GEN_AI_OPERATION_NAME, n.GEN_AI_AGENT_NAME, n.GEN_AI_TOOL_NAME} <= gen_ai
    assert {  # the rating's log record and score points
        n.GEN_AI_EVALUATION_NAME,
        n.GEN_AI_EVALUATION_SCORE_VALUE,
        n.GEN_AI_EVALUATION_SCORE_LABEL,
        n.GEN_AI_EVALUATION_EXPLANATION,
    } <= gen_ai
    assert gen_ai >= PENDING_ATTRIBUTES  # the handoff flow ran
    assert sorted(gen_ai - SEMCONV_ATTRIBUTES - PENDING_ATTRIBUTES) == []


def test_every_gen_ai_metric_is_a_semconv_metric(scripted_flow: Telemetered) -> None:
    names = {name for name, points in _metric_points(scripted_flow) if points}
    gen_ai = {name for name in names if name.startswith("gen_ai.")}
    assert gen_ai >= PENDING_METRICS
    assert sorted(gen_ai - SEMCONV_METRICS - PENDING_METRICS) == []
    assert {
        n.METRIC_AGENT_SWITCHES,
        n.METRIC_TOOL_CALLS,
        n.METRIC_HITL_DECISIONS,
        n.METRIC_HITL_WAIT,
    } <= names


def test_operation_names_are_semconv_values(scripted_flow: Telemetered) -> None:
    operations = {
        (span.attributes or {}).get(n.GEN_AI_OPERATION_NAME) for span in scripted_flow.spans()
    } - {None}
    allowed = {value.value for value in gen_ai_attributes.GenAiOperationNameValues}
    assert {n.OPERATION_INVOKE_AGENT, n.OPERATION_EXECUTE_TOOL, n.OPERATION_CHAT} <= operations
    assert operations <= allowed


def test_the_evaluation_event_is_the_conventions_event(scripted_flow: Telemetered) -> None:
    """``gen_ai.evaluation.result`` (the conventions' event, whose name the Python package does
    not carry yet) in the rated trace, with the conventions' attribute keys."""
    (log,) = [
        log
        for log in scripted_flow.logs()
        if log.log_record.event_name == n.EVENT_EVALUATION_RESULT
    ]
    assert n.EVENT_EVALUATION_RESULT == "gen_ai.evaluation.result"
    keys = set(log.log_record.attributes or {})
    assert {key for key in keys if key.startswith("gen_ai.")} <= SEMCONV_ATTRIBUTES
    assert n.GEN_AI_EVALUATION_NAME in keys  # the conventions' one required attribute
