"""The per-application hub: by default it records with the global providers; given its own,
it records there only (two applications side by side, as benchmark 1 runs them)."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import telemetry
from telemetry import names as n
from tests.support.fixtures import hub_in
from tests.support.otel import Telemetered


async def test_a_hub_with_its_own_providers_records_only_there(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    spans, logs, reader = (
        InMemorySpanExporter(),
        InMemoryLogRecordExporter(),
        InMemoryMetricReader(),
    )
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    meter_provider = MeterProvider(metric_readers=[reader])
    own = telemetry.Providers(tracer_provider, meter_provider, logger_provider, owned=False)
    async with hub_in(tmp_path, providers=own) as hub:
        request = telemetry.RequestTrace(hub.spans, "s1")
        run = request.agent("coder")
        hub.emit(
            telemetry.AgentSwitched(from_agent="orchestrator", to_agent="coder", trigger="user"),
            span=run.span,
        )
        request.finish(n.OUTCOME_COMPLETED)

    assert sorted(s.name for s in spans.get_finished_spans()) == [
        n.SPAN_AGENT_REQUEST,
        "invoke_agent coder",
    ]
    assert [r.log_record.event_name for r in logs.get_finished_logs()] == [n.EVENT_AGENT_SWITCHED]
    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert n.METRIC_INVOKE_AGENT_DURATION in names
    assert telemetered.spans() == []
    assert telemetered.logs() == []
