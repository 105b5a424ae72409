"""The per-application telemetry object: what the service holds and passes to its parts.

Global OpenTelemetry providers are configured once per process (:mod:`telemetry.setup`);
everything that belongs to one running application (its audit trail over the store's
outbox, its subscribers, the query views over them) lives here, so two apps in one process
(a restart in a test) each get their own and close them.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import _logs

from telemetry import audit
from telemetry import names as n
from telemetry.audit import AuditLog
from telemetry.cluster import ClusterGauges
from telemetry.emit import EventEmitter
from telemetry.metrics import MetricsRecorder
from telemetry.operation_metrics import OperationMetrics
from telemetry.outbox import AuditOutbox
from telemetry.query import AuditLogger, MetricsCollector
from telemetry.settings import TelemetrySettings
from telemetry.setup import Providers, global_providers
from telemetry.spans import SpanFactory
from telemetry.subscribers import NotificationService, Subscriber, SubscriberFanOut
from telemetry.timeline import TimelineEntry, TimelineRecorder


class Telemetry:
    """Spans, the emit call, and the seed's query views, for one application.

    Attributes:
        spans: the span factories (request, agent, tool, handoff, decision).
        metrics: ``get_metrics()`` and friends, exact whatever the sampler decides.
        audit: ``get_audit_log()`` over the durable audit store.
        notifications: the example subscriber (approvals waiting for a human).
        cluster: the deployment-wide gauges (sessions, running, approvals pending), fed by
            the service with the counts it reads from its store; with
            :func:`telemetry.global_providers` a detached one that nobody observes.
    """

    def __init__(
        self,
        *,
        settings: TelemetrySettings | None = None,
        audit: AuditOutbox | None = None,
        subscribers: Iterable[Subscriber] = (),
        providers: Providers | None = None,
    ) -> None:
        """``providers``: what :func:`telemetry.configure` returned (its audit delivery
        tells this application's outbox which records the Collector acknowledged), or other
        providers (two applications in one process with different telemetry side by side,
        as the per-run benchmark compares them); default: the global providers, whose
        acknowledgements this application then never hears."""
        self.settings = settings or TelemetrySettings.from_env()
        providers = providers if providers is not None else global_providers()
        self._delivery = providers.audit_delivery
        logger_provider = providers.logger_provider
        # With telemetry off (no-op providers, or no log exporter) no log record is built.
        ships = self._delivery.enabled and not isinstance(logger_provider, _logs.NoOpLoggerProvider)
        self._audit_store = (
            AuditLog(
                audit,
                logger=logger_provider.get_logger(n.AUDIT_SCOPE),
                ship=ships,
                delivery=self._delivery,
            )
            if audit is not None
            else None
        )
        meter = providers.meter_provider.get_meter(n.SCOPE)
        self.cluster = providers.cluster if providers.cluster is not None else ClusterGauges()
        if providers.cluster is not None:
            providers.cluster.attach(meter)
        self._recorder = MetricsRecorder(meter)
        # The recorder's counts are the ones get_metrics() reads.
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
        # it runs a dozen times a request, and a forwarding call would add to every one.
        self.emit = self._emitter.emit
        """Record an event in all four sinks; see :meth:`EventEmitter.emit`."""
        self.audit_record = self._emitter.audit_record
        """The record an audited event's change must be stored with; see
        :meth:`EventEmitter.audit_record`."""
        self.spans = SpanFactory(
            self._emitter,
            providers.tracer_provider.get_tracer(n.SCOPE),
            OperationMetrics(meter),
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

    def start(self) -> None:
        """Start the audit trail's flusher on the running event loop (the one that serves
        requests)."""
        if self._audit_store is not None:
            self._audit_store.start()

    async def resend_audit(
        self, *, older_than_s: float = 5.0, lease_s: float = audit.CLAIM_LEASE_S
    ) -> int:
        """Ship again the oldest audit records the Collector has not acknowledged: a batch
        while deliveries succeed, a small probe while the Collector is down, nothing when
        no log exporter is configured. ``lease_s``: how long the other processes leave the
        records shipped now to this one (a process that dies holds them back that long)."""
        if self._audit_store is None or not self._delivery.enabled:
            return 0
        limit = audit.RESEND_BATCH if self._delivery.healthy else audit.RESEND_PROBE
        return await self._audit_store.resend(
            older_than_s=older_than_s, limit=limit, lease_s=lease_s
        )

    async def audit_backlog(self) -> int:
        """Audit records the Collector has not acknowledged yet (0 without a trail)."""
        return 0 if self._audit_store is None else await self._audit_store.backlog()

    async def flush(self) -> None:
        """Write the audit trail's queue and emit the log records not shipped yet; the
        logger provider's ``force_flush`` then exports them. The service never needs it (the
        flusher runs every :data:`audit.FLUSH_INTERVAL_S`); a reader of log exporters (a
        test) does. Metric points need nothing: they are recorded when their event
        happens."""
        if self._audit_store is not None:
            await self._audit_store.flush()

    async def aclose(self) -> None:
        """Write and ship the audit trail's queue, then stop it. The exported metrics stay
        with the meter provider, cumulative, as OpenTelemetry defines them; the cluster
        gauges report nothing more (nobody feeds them now)."""
        self.cluster.stale()
        self._recorder.close()
        if self._audit_store is not None:
            await self._audit_store.aclose()
