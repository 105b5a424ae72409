"""Real SDK providers whose exporters do nothing but count: the cost of recording, not of
shipping. Batch processors run as in production (background thread, default delays), and
the meter provider takes the service's exemplar setting."""

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

from telemetry.setup import exemplar_filter


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

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()


def recording_providers() -> Recording:
    """TracerProvider + BatchSpanProcessor, MeterProvider + periodic reader, LoggerProvider +
    BatchLogRecordProcessor, all exporting to counters."""
    spans, logs = CountingSpanExporter(), CountingLogExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    reader = PeriodicExportingMetricReader(NullMetricExporter(), export_interval_millis=60_000)
    # The service's own choice (telemetry.setup.exemplar_filter): no exemplars by default.
    meter_provider = MeterProvider(
        metric_readers=[reader], shutdown_on_exit=False, exemplar_filter=exemplar_filter()
    )
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs))
    return Recording(tracer_provider, meter_provider, logger_provider, spans, logs)
