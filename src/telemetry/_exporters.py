"""Processors and exporter wrappers that account for what the SDK drops, on its public API.

The SDK drops spans and log records when its queue is full (one warning) and when an export
fails; both are counted here in ``agent_runtime.telemetry.dropped`` {signal}, so an outage is
visible on a dashboard instead of lost behind a log line. The log exporter wrapper also tells
the audit outbox which records reached the Collector (:class:`~telemetry.audit.AuditDelivery`).

How a full queue is known without reading the SDK's queue. Each signal has one
:class:`_Ledger`: the processor counts the items it hands to the SDK's batch processor, the
exporter wrapper counts the items the batch processor hands to the exporter. The SDK's
worker takes a batch off its queue and passes it to the exporter at once, so

    handed - exported  >=  items in the SDK's queue

at every moment (the difference is the queue plus, briefly, a batch on its way to the
exporter). The processor compares that difference with the queue size it gave the SDK (from
``OTEL_BSP_MAX_QUEUE_SIZE`` / ``OTEL_BLRP_MAX_QUEUE_SIZE``, read by
:class:`~telemetry.settings.TelemetrySettings` and passed to the SDK explicitly, so both use
the same number) and, when it is reached, refuses the new item and counts it. The SDK's own
queue therefore never overflows: it never evicts an item behind our back, and every item
lost to a full queue is one this module refused and counted. At worst an item is refused
while the worker is between taking a batch and exporting it, a moment in which the queue is
all but full anyway.

Why refuse the new item rather than let the SDK evict the oldest: the same number is lost
either way, but a refused item dies young. With eviction every item of an outage lives
seconds in a full queue first, long enough to reach the garbage collector's oldest
generation, whose full collections then show in the request latency
(``bench/outage.py``; ``bench/README.md`` has the history).

Items the SDK is handed after shutdown, or still holds when its shutdown gives up (an
unreachable Collector), are counted too: handed and never exported.

The processors wrap the SDK's ``BatchSpanProcessor`` / ``BatchLogRecordProcessor`` rather
than subclass them, so nothing here depends on their internals. The batch span processor
does nothing when a span starts or is ending, so the wrapper forwards ``on_start`` (public)
and leaves the ``_on_ending`` hook to the base class.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import Counter, MeterProvider
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from telemetry import names as n
from telemetry.delivery import AuditDelivery

_log = logging.getLogger(__name__)


class _Ledger:
    """Items handed to one batch processor and items its exporter received, for one signal;
    counts what is dropped. Safe from any thread (spans end, and log records are emitted,
    on request threads and the audit writer thread alike)."""

    WARN_WINDOW_S = 20.0
    """One "Queue full" warning per window while a queue refuses items, not one per item
    (the SDK's own warning has the same window)."""

    def __init__(self, signal: str, items: str, capacity: int, dropped: Counter) -> None:
        """``items``: what the signal's items are called in the warning."""
        self.signal = signal
        self.items = items
        self.capacity = capacity
        self._dropped = dropped
        self._attributes = {n.TELEMETRY_SIGNAL: signal}
        self._lock = threading.Lock()
        self._handed = 0
        self._exported = 0
        self._closed = False
        self._warned_at = -self.WARN_WINDOW_S

    def admit(self) -> bool:
        """Whether one more item fits the SDK's queue; if not, it is counted as dropped."""
        with self._lock:
            admitted = not self._closed and self._handed - self._exported < self.capacity
            if admitted:
                self._handed += 1
        if not admitted:
            self.drop(1)
            self._warn()
        return admitted

    def exported(self, count: int) -> None:
        """The SDK handed ``count`` items to the exporter."""
        with self._lock:
            self._exported += count

    def drop(self, count: int) -> None:
        self._dropped.add(count, self._attributes)

    def close(self) -> None:
        """The SDK's processor has shut down: what it was handed and never exported is lost
        (its shutdown gives up on an unreachable Collector), and so is anything after."""
        with self._lock:
            self._closed = True
            lost, self._handed = self._handed - self._exported, self._exported
        if lost > 0:
            self.drop(lost)

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._warned_at >= self.WARN_WINDOW_S:
            self._warned_at = now
            _log.warning(
                "Queue full: new %s are dropped while the exporter catches up (counted in %s)",
                self.items,
                n.METRIC_TELEMETRY_DROPPED,
            )


class CountingSpanExporter(SpanExporter):
    """Counts the spans of every failed export as dropped, and tells the ledger what the SDK
    handed over."""

    def __init__(self, inner: SpanExporter, ledger: _Ledger) -> None:
        self._inner = inner
        self._ledger = ledger

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._ledger.exported(len(spans))
        try:
            result = self._inner.export(spans)
        except Exception:
            _log.exception("span export raised")
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._ledger.drop(len(spans))
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class CountingLogExporter(LogRecordExporter):
    """Counts failed log exports as dropped; acknowledges delivered audit records."""

    def __init__(self, inner: LogRecordExporter, ledger: _Ledger, delivery: AuditDelivery) -> None:
        self._inner = inner
        self._ledger = ledger
        self._delivery = delivery

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self._ledger.exported(len(batch))
        try:
            result = self._inner.export(batch)
        except Exception:
            _log.exception("log export raised")
            result = LogRecordExportResult.FAILURE
        if result is LogRecordExportResult.SUCCESS:
            self._delivery.acknowledge(_audit_ids(batch))
        else:
            self._delivery.report_failure()
            self._ledger.drop(len(batch))
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))


def _audit_ids(batch: Sequence[ReadableLogRecord]) -> list[str]:
    ids = []
    for item in batch:
        attributes: Any = item.log_record.attributes or {}
        record_id = attributes.get(n.AUDIT_RECORD_ID)
        if isinstance(record_id, str):
            ids.append(record_id)
    return ids


class CountingSpanProcessor(SpanProcessor):
    """The SDK's ``BatchSpanProcessor`` for ``exporter``, refusing (and counting) new spans
    while its queue is full, and counting failed exports (see the module docstring)."""

    def __init__(
        self,
        exporter: SpanExporter,
        dropped: Counter,
        *,
        max_queue_size: int,
        meter_provider: MeterProvider | None = None,
        **batch: Any,
    ) -> None:
        """``batch``: the batch processor's other arguments (delays, batch size); the SDK
        reads them from ``OTEL_BSP_*`` when omitted. ``meter_provider``: where the SDK's own
        metrics go when ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`` is on."""
        self._ledger = _Ledger(n.SIGNAL_TRACES, "spans", max_queue_size, dropped)
        self._batch = BatchSpanProcessor(
            CountingSpanExporter(exporter, self._ledger),
            max_queue_size=max_queue_size,
            meter_provider=meter_provider,
            **batch,
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._batch.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        # What the batch processor itself skips (an unsampled span) is not counted either.
        if span.context is None or not span.context.trace_flags.sampled:
            return
        if self._ledger.admit():
            self._batch.on_end(span)

    def shutdown(self) -> None:
        self._batch.shutdown()  # type: ignore[no-untyped-call]
        self._ledger.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._batch.force_flush(timeout_millis)


class CountingLogRecordProcessor(LogRecordProcessor):
    """The SDK's ``BatchLogRecordProcessor`` for ``exporter``, refusing (and counting) new
    records while its queue is full; an audit record refused here stays in the outbox, which
    sends it again once the Collector is back."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        dropped: Counter,
        delivery: AuditDelivery,
        *,
        max_queue_size: int,
        meter_provider: MeterProvider | None = None,
        **batch: Any,
    ) -> None:
        self._ledger = _Ledger(n.SIGNAL_LOGS, "log records", max_queue_size, dropped)
        self._batch = BatchLogRecordProcessor(
            CountingLogExporter(exporter, self._ledger, delivery),
            max_queue_size=max_queue_size,
            meter_provider=meter_provider,
            **batch,
        )

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if self._ledger.admit():
            self._batch.on_emit(log_record)

    def shutdown(self) -> None:
        self._batch.shutdown()  # type: ignore[no-untyped-call]
        self._ledger.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._batch.force_flush(timeout_millis)
