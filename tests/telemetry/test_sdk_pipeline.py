"""The layer on the SDK's public API (docs/architecture.md): every span is the SDK's, so every
processor hook fires, span limits apply, the SDK's own metrics work and land with ours, and
histogram points carry exemplars of the operation's span (the SDK's default filter)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry import _logs
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler
from opentelemetry.semconv._incubating.metrics import otel_metrics

import telemetry
from telemetry import names as n
from tests.support.fixtures import hub_in
from tests.support.otel import HookRecorder, SpanLedger

INTERNAL_METRICS = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"
NO_EXPORTERS = telemetry.TelemetrySettings(
    traces_exporters=(), metrics_exporters=(), logs_exporters=()
)


@dataclass
class Own:
    """A hub on providers of its own (not the session's globals)."""

    hub: telemetry.Telemetry
    tracer_provider: TracerProvider
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    hooks: HookRecorder
    ledger: SpanLedger


def _own(
    tmp_path: Path, *, limits: SpanLimits | None = None, sampler: Sampler | None = None
) -> Own:
    spans, reader, hooks, ledger = (
        InMemorySpanExporter(),
        InMemoryMetricReader(),
        HookRecorder(),
        SpanLedger(),
    )
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider(span_limits=limits, sampler=sampler)
    for processor in (hooks, ledger, SimpleSpanProcessor(spans)):
        tracer_provider.add_span_processor(processor)
    providers = telemetry.Providers(
        tracer_provider, meter_provider, _logs.NoOpLoggerProvider(), owned=False
    )
    hub = telemetry.Telemetry(settings=telemetry.TelemetrySettings(), providers=providers)
    return Own(hub, tracer_provider, spans, reader, hooks, ledger)


@pytest.fixture
async def own(tmp_path: Path) -> AsyncIterator[Own]:
    own = _own(tmp_path)
    yield own
    await own.hub.aclose()


EVERY_SPAN = (
    n.SPAN_AGENT_REQUEST,
    "invoke_agent debug",
    "chat scripted",
    "execute_tool read_file",
    f"execute_tool {n.HANDOFF_TOOL_PREFIX}coder",
    n.SPAN_HITL_DECISION,
)


def _one_request_of_every_span(hub: telemetry.Telemetry) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    run = request.agent("debug")
    call = request.chat(run, "scripted", provider="openai", server_address="scripted.invalid")
    call.first_chunk()
    call.usage(input_tokens=10, output_tokens=2)
    call.stop()
    tool = request.tool("read_file", "c1", run=run)
    with hub.spans.decision("c1", "read_file", waiting=telemetry.SpanRef.of(tool)):
        pass
    tool.stop(n.OUTCOME_COMPLETED)
    request.handoff(run, "coder", "c2").stop(n.OUTCOME_COMPLETED)
    request.finish(n.OUTCOME_COMPLETED)


def test_every_span_gets_every_processor_hook_once_in_order(own: Own) -> None:
    _one_request_of_every_span(own.hub)
    for name in EVERY_SPAN:
        assert own.hooks.hooks_of(name) == ["start", "ending", "end"], name
    own.ledger.assert_each_ended_once()


async def test_span_limits_apply_to_the_layers_spans_and_events(tmp_path: Path) -> None:
    limits = SpanLimits(max_attribute_length=5, max_events=1)
    own = _own(tmp_path, limits=limits)
    try:
        request = telemetry.RequestTrace(own.hub.spans, "session-long")
        run = request.agent("orchestrator")
        for number in range(3):
            own.hub.emit(
                telemetry.ToolExecutionRequested(
                    tool="write_file", call_id=f"c{number}", agent="orchestrator"
                ),
                span=run.span,
            )
        request.finish(n.OUTCOME_COMPLETED)
    finally:
        await own.hub.aclose()
    (agent,) = [s for s in own.spans.get_finished_spans() if s.name == "invoke_agent orchestrator"]
    attributes = agent.attributes or {}
    assert attributes[n.GEN_AI_AGENT_NAME] == "orche"
    assert attributes[n.GEN_AI_CONVERSATION_ID] == "sessi"
    assert len(agent.events) == 1 and agent.dropped_events == 2
    assert (agent.events[0].attributes or {})[n.GEN_AI_TOOL_NAME] == "write"


def _metric_names(reader: InMemoryMetricReader) -> set[str]:
    data = reader.get_metrics_data()
    return {
        metric.name
        for resource_metrics in (data.resource_metrics if data else ())
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }


async def test_the_sdks_internal_metrics_work_and_land_with_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`` (read when the processors are built)
    the tracer and the batch processors report on the meter provider the layer built."""
    monkeypatch.setenv(INTERNAL_METRICS, "true")
    reader, spans, logs = (
        InMemoryMetricReader(),
        InMemorySpanExporter(),
        InMemoryLogRecordExporter(),
    )
    providers = telemetry.build_providers(
        NO_EXPORTERS, span_exporters=[spans], metric_readers=[reader], log_exporters=[logs]
    )
    try:
        async with hub_in(tmp_path, providers=providers) as hub:
            request = telemetry.RequestTrace(hub.spans, "s1")
            hub.emit(
                telemetry.AgentSwitched(
                    from_agent="orchestrator", to_agent="coder", trigger="user"
                ),
                span=request.agent("orchestrator").span,
            )
            request.finish(n.OUTCOME_COMPLETED)
            await hub.flush()
            assert isinstance(providers.tracer_provider, TracerProvider)
            providers.tracer_provider.force_flush()
            assert isinstance(providers.logger_provider, _logs.LoggerProvider)
            providers.logger_provider.force_flush()  # type: ignore[attr-defined]
            names = _metric_names(reader)
    finally:
        telemetry.shutdown(providers, deadline_s=5)
    assert {span.name for span in spans.get_finished_spans()} == {
        n.SPAN_AGENT_REQUEST,
        "invoke_agent orchestrator",
    }
    assert len(logs.get_finished_logs()) == 1  # the switch's audit record
    assert {
        otel_metrics.OTEL_SDK_SPAN_STARTED,
        otel_metrics.OTEL_SDK_PROCESSOR_SPAN_PROCESSED,
        otel_metrics.OTEL_SDK_PROCESSOR_LOG_PROCESSED,
        n.METRIC_AGENT_SWITCHES,
        n.METRIC_INVOKE_AGENT_DURATION,
    } <= names


async def test_without_the_variable_the_sdk_reports_nothing_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(INTERNAL_METRICS, raising=False)
    reader = InMemoryMetricReader()
    providers = telemetry.build_providers(
        NO_EXPORTERS, span_exporters=[InMemorySpanExporter()], metric_readers=[reader]
    )
    hub = telemetry.Telemetry(providers=providers)
    try:
        telemetry.RequestTrace(hub.spans, "s1").finish(n.OUTCOME_COMPLETED)
        names = _metric_names(reader)
    finally:
        await hub.aclose()
        telemetry.shutdown(providers, deadline_s=5)
    assert not {name for name in names if name.startswith("otel.sdk.")}


def _points(reader: InMemoryMetricReader) -> dict[str, list[HistogramDataPoint]]:
    """Every histogram's points, from one collection (a collection hands the exemplars over:
    the next one has none for points recorded before it)."""
    data = reader.get_metrics_data()
    found: dict[str, list[HistogramDataPoint]] = {}
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = metric.data.data_points
                found.setdefault(metric.name, []).extend(
                    point for point in points if isinstance(point, HistogramDataPoint)
                )
    return found


def test_a_duration_point_has_an_exemplar_of_its_own_span(
    own: Own, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's default exemplar filter (trace_based): the point recorded when the agent
    run ends is linked to that run's span, so a slow bucket leads to its trace."""
    monkeypatch.delenv("OTEL_METRICS_EXEMPLAR_FILTER", raising=False)
    request = telemetry.RequestTrace(own.hub.spans, "s1")
    run = request.agent("coder")
    tool = request.tool("write_file", "c1", run=run)
    tool.stop(n.OUTCOME_COMPLETED)
    request.finish(n.OUTCOME_COMPLETED)
    points = _points(own.reader)
    for metric, operation in (
        (n.METRIC_INVOKE_AGENT_DURATION, run),
        (n.METRIC_EXECUTE_TOOL_DURATION, tool),
    ):
        (point,) = points[metric]
        assert [(e.trace_id, e.span_id) for e in point.exemplars] == [
            (operation.span_context.trace_id, operation.span_context.span_id)
        ], metric


async def test_an_unsampled_operation_records_its_point_without_an_exemplar(tmp_path: Path) -> None:
    own = _own(tmp_path, sampler=ALWAYS_OFF)
    try:
        request = telemetry.RequestTrace(own.hub.spans, "s1")
        request.agent("coder")
        request.finish(n.OUTCOME_COMPLETED)
        (point,) = _points(own.reader)[n.METRIC_INVOKE_AGENT_DURATION]
    finally:
        await own.hub.aclose()
    assert point.count == 1
    assert point.exemplars == []
