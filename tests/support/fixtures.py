"""Shared fixtures, registered by ``tests/conftest.py``: one set of in-memory OpenTelemetry
providers for the whole session, composed from small fixtures, and the scenario fixtures
built on them.

OpenTelemetry's global providers can be set once per process, so the session configures
them once: ``span_exporter``, ``metric_reader`` and ``log_exporter`` (in memory), the
``span_ledger`` (pairs every span's start and end) and a sampler a test can switch to
ALWAYS_OFF feed ``tracer_provider``, ``meter_provider`` and ``logger_provider``, which
``otel`` registers with ``telemetry.configure``. Each test that asks for ``telemetered``
starts with empty exporters and ledger; ``unsampled`` and ``capture_on`` are the scenarios;
``hub`` is one application's telemetry on those providers, closed after the test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import telemetry
from agent_runtime.store import SQLiteStore
from tests.support.otel import SpanLedger, SwitchableSampler, Telemetered


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="session")
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture(scope="session")
def log_exporter() -> InMemoryLogRecordExporter:
    return InMemoryLogRecordExporter()


@pytest.fixture(scope="session")
def sampler() -> SwitchableSampler:
    return SwitchableSampler()


@pytest.fixture(scope="session")
def span_ledger() -> SpanLedger:
    return SpanLedger()


@pytest.fixture(scope="session")
def meter_provider(metric_reader: InMemoryMetricReader) -> MeterProvider:
    return MeterProvider(metric_readers=[metric_reader], shutdown_on_exit=False)


@pytest.fixture(scope="session")
def tracer_provider(
    span_exporter: InMemorySpanExporter,
    sampler: SwitchableSampler,
    span_ledger: SpanLedger,
    meter_provider: MeterProvider,
) -> TracerProvider:
    provider = TracerProvider(
        sampler=sampler, shutdown_on_exit=False, meter_provider=meter_provider
    )
    provider.add_span_processor(span_ledger)
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


@pytest.fixture(scope="session")
def logger_provider(log_exporter: InMemoryLogRecordExporter) -> LoggerProvider:
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    return provider


@pytest.fixture(scope="session")
def otel(
    span_exporter: InMemorySpanExporter,
    metric_reader: InMemoryMetricReader,
    log_exporter: InMemoryLogRecordExporter,
    sampler: SwitchableSampler,
    span_ledger: SpanLedger,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    logger_provider: LoggerProvider,
) -> Telemetered:
    """The session's providers, registered globally once."""
    providers = telemetry.configure(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    return Telemetered(span_exporter, metric_reader, log_exporter, sampler, span_ledger, providers)


@pytest.fixture
def telemetered(otel: Telemetered) -> Iterator[Telemetered]:
    """The session's exporters and ledger, emptied for this test (metrics: read as deltas)."""
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


@pytest.fixture
async def audit_outbox(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """A store of its own (the embedded one, a real SQLite file) as the audit outbox."""
    async with SQLiteStore(tmp_path / "outbox.db") as store:
        yield store


@pytest.fixture
async def hub(
    telemetered: Telemetered, audit_outbox: SQLiteStore
) -> AsyncIterator[telemetry.Telemetry]:
    """One application's telemetry (content capture off, its audit trail in a store of its
    own) on the session's providers, started on the test's event loop."""
    async with hub_on(
        audit_outbox, settings=telemetry.TelemetrySettings(), providers=telemetered.providers
    ) as started:
        yield started


@asynccontextmanager
async def hub_on(
    outbox: telemetry.AuditOutbox | None,
    *,
    settings: telemetry.TelemetrySettings | None = None,
    providers: telemetry.Providers | None = None,
    subscribers: Iterable[telemetry.Subscriber] = (),
) -> AsyncIterator[telemetry.Telemetry]:
    """An application's telemetry over ``outbox`` (``settings``: default from the
    environment), started; closed (its audit queue written and shipped) when the block
    ends."""
    hub = telemetry.Telemetry(
        settings=settings, audit=outbox, providers=providers, subscribers=subscribers
    )
    hub.start()
    try:
        yield hub
    finally:
        await hub.aclose()


@asynccontextmanager
async def hub_in(
    directory: Path,
    *,
    settings: telemetry.TelemetrySettings | None = None,
    providers: telemetry.Providers | None = None,
    subscribers: Iterable[telemetry.Subscriber] = (),
) -> AsyncIterator[telemetry.Telemetry]:
    """:func:`hub_on` a fresh store in ``directory`` (a file of its own each time)."""
    async with (
        SQLiteStore(directory / f"outbox-{uuid.uuid4().hex[:8]}.db") as store,
        hub_on(store, settings=settings, providers=providers, subscribers=subscribers) as hub,
    ):
        yield hub
