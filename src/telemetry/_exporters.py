"""Exporter and processor wrappers that account for what the SDK drops.

The SDK drops spans and log records silently when its queue is full (one warning) and when
an export fails; both are counted here in ``agent_runtime.telemetry.dropped`` {signal}, so
an outage is visible on a dashboard instead of lost behind a log line. The log exporter
also tells the audit outbox which records reached the Collector.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.metrics import Counter
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from telemetry import names as n
from telemetry.audit import acknowledge, report_failed_delivery

_log = logging.getLogger(__name__)


class CountingSpanExporter(SpanExporter):
    """Counts the spans of every failed export as dropped."""

    def __init__(self, inner: SpanExporter, dropped: Counter) -> None:
        self._inner = inner
        self._dropped = dropped

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception:
            _log.exception("span export raised")
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._dropped.add(len(spans), {n.TELEMETRY_SIGNAL: "traces"})
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class CountingLogExporter(LogRecordExporter):
    """Counts failed log exports as dropped; acknowledges delivered audit records."""

    def __init__(self, inner: LogRecordExporter, dropped: Counter) -> None:
        self._inner = inner
        self._dropped = dropped

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            result = self._inner.export(batch)
        except Exception:
            _log.exception("log export raised")
            result = LogRecordExportResult.FAILURE
        if result is LogRecordExportResult.SUCCESS:
            acknowledge(_audit_ids(batch))
        else:
            report_failed_delivery()
            self._dropped.add(len(batch), {n.TELEMETRY_SIGNAL: "logs"})
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


class _Warned:
    """One warning per window while a queue refuses items, not one per item (the SDK's own
    "Queue full" warning has the same 20 s window)."""

    WINDOW_S = 20.0

    def __init__(self, signal: str) -> None:
        self._signal = signal
        self._last = -self.WINDOW_S

    def dropped(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.WINDOW_S:
            self._last = now
            _log.warning(
                "Queue full: new %s are dropped while the exporter catches up (counted in %s)",
                self._signal,
                n.METRIC_TELEMETRY_DROPPED,
            )


def _queue_full(processor: Any) -> bool:
    # The SDK's BatchProcessor evicts the oldest item when its deque is full and says so
    # once; reading its queue is the only way to know before it does.
    batch = getattr(processor, "_batch_processor", None)
    queue = getattr(batch, "_queue", None)
    return queue is not None and queue.maxlen is not None and len(queue) >= queue.maxlen


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor that drops (and counts) new spans while its queue is full.

    The SDK's own processor would take the new span and evict the oldest. Dropping at the
    door loses as many spans, but a span that is refused dies young: with eviction, every
    span of an outage lives a few seconds in a full queue first, long enough to be promoted
    to the garbage collector's oldest generation, whose collections are the pauses that
    showed in the request p99 while the Collector was down (``bench/outage.py``).
    """

    def __init__(self, exporter: SpanExporter, dropped: Counter, **kwargs: Any) -> None:
        super().__init__(CountingSpanExporter(exporter, dropped), **kwargs)
        self._dropped = dropped
        self._warned = _Warned("spans")

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled and _queue_full(self):
            self._dropped.add(1, {n.TELEMETRY_SIGNAL: "traces"})
            self._warned.dropped()
            return
        super().on_end(span)


class CountingBatchLogRecordProcessor(BatchLogRecordProcessor):
    """A BatchLogRecordProcessor that drops (and counts) new records while its queue is
    full, for the same reason; an audit record refused here stays in the outbox, which
    sends it again once the Collector is back."""

    def __init__(self, exporter: LogRecordExporter, dropped: Counter, **kwargs: Any) -> None:
        super().__init__(CountingLogExporter(exporter, dropped), **kwargs)
        self._dropped = dropped
        self._warned = _Warned("log records")

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if _queue_full(self):
            self._dropped.add(1, {n.TELEMETRY_SIGNAL: "logs"})
            self._warned.dropped()
            return
        super().on_emit(log_record)
