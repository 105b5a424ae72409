"""Shared fixtures: one set of in-memory OpenTelemetry providers for the whole session.

OpenTelemetry's global providers can be set once per process, so the session configures
them once with in-memory exporters and a sampler that a test can switch to ALWAYS_OFF; each
test starts with empty exporters.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import telemetry
from tests.support.otel import SwitchableSampler, Telemetered


@pytest.fixture(scope="session")
def otel() -> Telemetered:
    spans = InMemorySpanExporter()
    sampler = SwitchableSampler()
    tracer_provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    metric_reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[metric_reader], shutdown_on_exit=False)
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    telemetry.configure(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    return Telemetered(spans, metric_reader, logs, sampler)


@pytest.fixture
def telemetered(otel: Telemetered) -> Iterator[Telemetered]:
    """The session's exporters, emptied for this test (metrics: read as deltas)."""
    otel.reset()
    yield otel
    otel.sampler.sample = True


@pytest.fixture
def unsampled(telemetered: Telemetered) -> Telemetered:
    """Every new trace is dropped by the sampler (ALWAYS_OFF)."""
    telemetered.sampler.sample = False
    return telemetered


@pytest.fixture
def capture_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
