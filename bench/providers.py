"""Real SDK providers whose exporters do nothing but count: the cost of recording, not of
shipping. Batch processors run as in production (background thread, default delays), and
the meter provider has the SDK's default exemplar filter, as the service's does.

Two pipelines: the service's own (``layer=True``: :func:`telemetry.build_providers`, its
counting batch processors and audit delivery, exactly what ``agent-runtime serve``
builds), and the raw SDK's (``layer=False``: the SDK's batch processors on the counting
exporters, what a hand-written trace would use)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import telemetry


class CountingSpanExporter(SpanExporter):
    def __init__(self) -> None:
        self.count = 0
        self.names: dict[str, int] = {}
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self.count += len(spans)
            for span in spans:
                self.names[span.name] = self.names.get(span.name, 0) + 1
        return SpanExportResult.SUCCESS


class CountingLogExporter(LogRecordExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.count += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class NullMetricExporter(MetricExporter):
    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


@dataclass(slots=True)
class Recording:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    spans: CountingSpanExporter
    logs: CountingLogExporter
    providers: telemetry.Providers
    """What a runtime records with (for the layer's pipeline, with its audit delivery)."""

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()


_NO_EXPORTERS = telemetry.TelemetrySettings(
    traces_exporters=(), metrics_exporters=(), logs_exporters=()
)


def recording_providers(*, layer: bool = True) -> Recording:
    """TracerProvider + batch span processor, MeterProvider + periodic reader, LoggerProvider +
    batch log record processor, all exporting to counters: the layer's counting processors
    (``layer``) or the SDK's own."""
    spans, logs = CountingSpanExporter(), CountingLogExporter()
    reader = PeriodicExportingMetricReader(NullMetricExporter(), export_interval_millis=60_000)
    if layer:
        providers = telemetry.build_providers(
            _NO_EXPORTERS, span_exporters=[spans], metric_readers=[reader], log_exporters=[logs]
        )
        assert isinstance(providers.tracer_provider, TracerProvider)
        assert isinstance(providers.meter_provider, MeterProvider)
        assert isinstance(providers.logger_provider, LoggerProvider)
        return Recording(
            providers.tracer_provider,
            providers.meter_provider,
            providers.logger_provider,
            spans,
            logs,
            providers,
        )
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    tracer_provider = TracerProvider(shutdown_on_exit=False, meter_provider=meter_provider)
    tracer_provider.add_span_processor(BatchSpanProcessor(spans, meter_provider=meter_provider))
    logger_provider = LoggerProvider(shutdown_on_exit=False, meter_provider=meter_provider)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(logs, meter_provider=meter_provider)
    )
    raw = telemetry.Providers(tracer_provider, meter_provider, logger_provider, owned=False)
    return Recording(tracer_provider, meter_provider, logger_provider, spans, logs, raw)
