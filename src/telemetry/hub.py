"""The per-application telemetry object: what the service holds and passes to its parts.

Global OpenTelemetry providers are configured once per process (:mod:`telemetry.setup`);
everything that belongs to one running application (its audit file, its subscribers, the
query views over them) lives here, so two apps in one process (a restart in a test) each
get their own and close them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

from telemetry import audit
from telemetry._histogram_batch import batch_for
from telemetry.audit import AUDIT_LOGGER, AuditLog
from telemetry.emit import EventEmitter
from telemetry.metrics import MetricsRecorder
from telemetry.operation_metrics import OperationMetrics
from telemetry.query import AuditLogger, MetricsCollector
from telemetry.settings import TelemetrySettings
from telemetry.setup import Providers, exemplars_requested
from telemetry.spans import SpanFactory
from telemetry.subscribers import NotificationService, Subscriber, SubscriberFanOut
from telemetry.timeline import TimelineEntry, TimelineRecorder

_SCOPE = "agent_runtime"


class Telemetry:
    """Spans, the emit call, and the seed's query views, for one application.

    Attributes:
        spans: the span factories (request, agent, tool, handoff, decision).
        metrics: ``get_metrics()`` and friends, exact whatever the sampler decides.
        audit: ``get_audit_log()`` over the durable audit store.
        notifications: the example subscriber (approvals waiting for a human).
    """

    def __init__(
        self,
        *,
        settings: TelemetrySettings | None = None,
        audit_path: Path | None = None,
        subscribers: Iterable[Subscriber] = (),
        providers: Providers | None = None,
    ) -> None:
        """``providers``: record with these instead of the global ones :func:`configure`
        set (two applications in one process with different telemetry, as benchmark 1
        runs them side by side)."""
        self.settings = settings or TelemetrySettings.from_env()
        tracer_provider = providers.tracer_provider if providers else trace.get_tracer_provider()
        meter_provider = providers.meter_provider if providers else metrics.get_meter_provider()
        logger_provider = providers.logger_provider if providers else _logs.get_logger_provider()
        # With telemetry off (no-op providers, or no log exporter) no log record is built.
        ships = audit.delivery.enabled and not isinstance(logger_provider, _logs.NoOpLoggerProvider)
        self._audit_store = (
            AuditLog(audit_path, logger=logger_provider.get_logger(AUDIT_LOGGER), ship=ships)
            if audit_path is not None
            else None
        )
        meter = meter_provider.get_meter(_SCOPE)
        # Histogram points reach the SDK in batches, off the request path (see the module).
        self._histograms = batch_for(
            meter,
            sdk=isinstance(meter_provider, SdkMeterProvider),
            exemplars=exemplars_requested(),
        )
        self._recorder = MetricsRecorder(meter, batch=self._histograms)
        # The recorder's counts are the ones get_metrics() reads: counted once, per event.
        self.metrics = MetricsCollector(self._recorder.counts)
        self._timeline = TimelineRecorder()
        self.notifications = NotificationService()
        fan_out = SubscriberFanOut([self.notifications])
        for subscriber in subscribers:
            fan_out.add(subscriber)
        self._fan_out = fan_out
        self._emitter = EventEmitter(
            self.settings, self._recorder, self._audit_store, fan_out, self._timeline
        )
        # ``emit`` is the emitter's bound method itself, not a method that forwards to it:
        # it runs a dozen times a request, and the extra call cost ~0.4 µs an event.
        self.emit = self._emitter.emit
        """Record an event in all four sinks; see :meth:`EventEmitter.emit`."""
        self.spans = SpanFactory(
            self._emitter,
            tracer_provider.get_tracer(_SCOPE),
            OperationMetrics(meter, self._histograms),
        )
        self.audit: AuditLogger | None = (
            AuditLogger(self._audit_store) if self._audit_store is not None else None
        )

    def subscribe(self, subscriber: Subscriber) -> None:
        """Add an in-process subscriber; emitters need no change."""
        self._fan_out.add(subscriber)

    def timeline(self, trace_id: str) -> list[TimelineEntry] | None:
        """The seed's timeline of one request, or None when it is not (or no longer) known."""
        return self._timeline.timeline(trace_id)

    def resend_audit(self, *, older_than_s: float = 5.0) -> int:
        """Ship again the oldest audit records the Collector has not acknowledged: a batch
        while deliveries succeed, a small probe while the Collector is down, nothing when
        no log exporter is configured."""
        if self._audit_store is None or not audit.delivery.enabled:
            return 0
        limit = audit.RESEND_BATCH if audit.delivery.healthy else audit.RESEND_PROBE
        return self._audit_store.resend_unexported(older_than_s=older_than_s, limit=limit)

    def flush(self) -> None:
        """Commit the audit trail and emit the log records its writer thread has not
        shipped yet; the logger provider's ``force_flush`` then exports them. The service
        never needs it (the writer thread ships every :data:`audit.COMMIT_INTERVAL_S`); a
        reader of log exporters (a test) does. Histogram points need nothing: every metric
        collection hands them over first."""
        if self._audit_store is not None:
            self._audit_store.flush()

    def close(self) -> None:
        """Commit the audit trail's queue and close it; hand this app's queued histogram
        points to the SDK; keep its counts in the process totals the exported counters
        report."""
        if self._histograms is not None:
            self._histograms.close()
        self._recorder.close()
        if self._audit_store is not None:
            self._audit_store.close()
