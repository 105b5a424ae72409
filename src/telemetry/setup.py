"""Configure OpenTelemetry once, from the standard environment variables; shut it down once,
with a deadline.

:func:`configure` builds the tracer, meter and logger providers (or takes the ones a test
passes in), registers them globally and returns them as a :class:`Providers`, which the
application keeps and passes on: to :class:`telemetry.Telemetry` (whose audit outbox
learns from it which records the Collector acknowledged) and to :func:`shutdown`. Importing
the package starts nothing, and the layer keeps no state of its own between calls: whether
the process is configured is read from the global providers.

What is built comes from :class:`~telemetry.settings.TelemetrySettings`: the exporters per
signal (``OTEL_{TRACES,METRICS,LOGS}_EXPORTER``: ``otlp`` default, ``console``, ``none``)
and the OTLP protocol per signal (``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_PROTOCOL``,
else ``OTEL_EXPORTER_OTLP_PROTOCOL``, else ``grpc``). Endpoints and headers (general and
per signal), timeouts, batch delays, the sampler, the resource and the exemplar filter are
read by the SDK itself, as its specification says. ``OTEL_SDK_DISABLED=true`` leaves the
API's no-op providers in place.

A missing Collector never fails or slows a request: exports run on the SDK's background
threads, full queues drop and count (:mod:`telemetry._exporters`). The providers are built
with ``shutdown_on_exit=False`` and :func:`shutdown` bounds flushing by a deadline, because
the SDK's own shutdown waits up to 30 s for an unreachable endpoint. The meter provider is
handed to the tracer and logger providers and to the batch processors, so the SDK's own
metrics (``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``) are exported with the service's.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import (
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from telemetry import names as n
from telemetry._exporters import CountingLogRecordProcessor, CountingSpanProcessor
from telemetry.audit import AuditDelivery
from telemetry.cluster import ClusterGauges
from telemetry.metrics import dropped_counter
from telemetry.settings import OtlpProtocol, TelemetrySettings

_log = logging.getLogger(__name__)
DEFAULT_SERVICE_NAME = "agent-runtime"


@dataclass(frozen=True, slots=True)
class Providers:
    """The providers the application records with, and what comes with them.

    Attributes:
        tracer_provider, meter_provider, logger_provider: the providers (the API's no-op or
            proxy ones where telemetry is off).
        owned: True when :func:`configure` built them and :func:`shutdown` must flush them.
        audit_delivery: what the log exporter reports about the audit log records (which
            ones reached the Collector, whether shipping works); the application's
            :class:`telemetry.Telemetry` listens to it.
        cluster: the deployment-wide gauges of this meter provider, which the application's
            :class:`telemetry.Telemetry` registers and exposes; None for
            :func:`global_providers` (the gauges belong to the :class:`Providers` that
            registered them first, which is not known there).
    """

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    logger_provider: _logs.LoggerProvider
    owned: bool
    audit_delivery: AuditDelivery = field(default_factory=AuditDelivery)
    cluster: ClusterGauges | None = field(default_factory=ClusterGauges)


def _resource(service_name: str, service_version: str | None) -> Resource:
    """The SDK's resource, with the caller's name and version as defaults that
    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` override (read by the SDK's own
    detector)."""
    defaults: dict[str, str] = {SERVICE_NAME: service_name}
    if service_version:
        defaults[SERVICE_VERSION] = service_version
    detected = OTELResourceDetector().detect().attributes
    # Replicas are told apart by their instance id: OTEL_RESOURCE_ATTRIBUTES' when it names
    # one (an orchestrator's pod name), otherwise one of this process's own.
    if SERVICE_INSTANCE_ID not in detected:
        defaults[SERVICE_INSTANCE_ID] = uuid.uuid4().hex
    resource = Resource.create({**defaults, **detected})
    _log.info(
        "telemetry resource: %s=%s",
        SERVICE_INSTANCE_ID,
        resource.attributes.get(SERVICE_INSTANCE_ID),
    )
    return resource


def _span_exporter(name: str, protocol: OtlpProtocol) -> SpanExporter | None:
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        _log.warning("unknown traces exporter %r ignored", name)
        return None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPSpanExporter,
    )

    return HTTPSpanExporter()


def _metric_exporter(name: str, protocol: OtlpProtocol) -> MetricExporter | None:
    if name == "console":
        return ConsoleMetricExporter()
    if name != "otlp":
        _log.warning("unknown metrics exporter %r ignored", name)
        return None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HTTPMetricExporter,
    )

    return HTTPMetricExporter()


def _log_exporter(name: str, protocol: OtlpProtocol) -> LogRecordExporter | None:
    if name == "console":
        return ConsoleLogRecordExporter()
    if name != "otlp":
        _log.warning("unknown logs exporter %r ignored", name)
        return None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HTTPLogExporter,
    )

    return HTTPLogExporter()


def build_providers(
    settings: TelemetrySettings | None = None,
    *,
    service_name: str = DEFAULT_SERVICE_NAME,
    service_version: str | None = None,
    span_exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[MetricReader] = (),
    log_exporters: Sequence[LogRecordExporter] = (),
) -> Providers:
    """The SDK providers the settings describe, not registered globally (:func:`configure`
    registers them). ``span_exporters``, ``metric_readers`` and ``log_exporters`` are added
    to the ones the settings name, on the same counting batch processors (tests and
    benchmarks read what the service would export)."""
    settings = settings or TelemetrySettings.from_env()
    resource = _resource(service_name, service_version)
    readers = [*metric_readers]
    for name in settings.metrics_exporters:
        exporter = _metric_exporter(name, settings.metrics_protocol)
        if exporter is not None:
            readers.append(PeriodicExportingMetricReader(exporter))
    # No exemplar filter given: the SDK reads OTEL_METRICS_EXEMPLAR_FILTER (default
    # trace_based).
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, shutdown_on_exit=False
    )
    dropped = dropped_counter(meter_provider.get_meter(n.TELEMETRY_SCOPE))
    tracer_provider = TracerProvider(
        resource=resource, shutdown_on_exit=False, meter_provider=meter_provider
    )
    spans = [_span_exporter(name, settings.traces_protocol) for name in settings.traces_exporters]
    for span_exporter in [*span_exporters, *spans]:
        if span_exporter is not None:
            tracer_provider.add_span_processor(
                CountingSpanProcessor(
                    span_exporter,
                    dropped,
                    max_queue_size=settings.span_queue_size,
                    meter_provider=meter_provider,
                )
            )
    logger_provider = LoggerProvider(
        resource=resource, shutdown_on_exit=False, meter_provider=meter_provider
    )
    logs = [_log_exporter(name, settings.logs_protocol) for name in settings.logs_exporters]
    chosen = [exporter for exporter in [*log_exporters, *logs] if exporter is not None]
    delivery = AuditDelivery(enabled=bool(chosen))
    for log_exporter in chosen:
        logger_provider.add_log_record_processor(
            CountingLogRecordProcessor(
                log_exporter,
                dropped,
                delivery,
                max_queue_size=settings.log_queue_size,
                meter_provider=meter_provider,
            )
        )
    return Providers(tracer_provider, meter_provider, logger_provider, True, delivery)


def configured() -> bool:
    """Whether the global providers are set (by :func:`configure` or anyone else): read from
    OpenTelemetry's globals, which can be set once per process."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def global_providers() -> Providers:
    """The global providers as they are, not owned (nothing to shut down here), with an
    audit delivery of their own: acknowledgements reach only the :class:`Providers` that
    :func:`configure` returned (and whether a log exporter exists is known only there), so
    pass that one where possible. The same goes for the cluster gauges: a meter keeps the
    callbacks registered first, so these providers register none (``cluster`` is None)."""
    return Providers(
        trace.get_tracer_provider(),
        metrics.get_meter_provider(),
        _logs.get_logger_provider(),
        owned=False,
        cluster=None,
    )


def configure(
    *,
    settings: TelemetrySettings | None = None,
    service_name: str = DEFAULT_SERVICE_NAME,
    service_version: str | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    logger_provider: _logs.LoggerProvider | None = None,
) -> Providers:
    """Set up the global providers once; keep the returned :class:`Providers` and pass it on.

    Pass all three providers to use your own (tests pass in-memory exporters); pass none to
    build them from the environment (``settings``: default :meth:`TelemetrySettings.from_env`),
    with ``service_name`` and ``service_version`` as the resource's defaults (the caller's:
    the layer does not know what it runs in). A second call, once the global providers are
    set, warns and keeps the first configuration: it returns the global providers, not owned.
    Call it from one thread, at start-up.
    """
    if configured():
        _log.warning("telemetry is already configured; keeping the first configuration")
        return global_providers()
    if tracer_provider is not None and meter_provider is not None and logger_provider:
        providers = Providers(tracer_provider, meter_provider, logger_provider, owned=False)
    elif (settings or TelemetrySettings.from_env()).sdk_disabled:
        return Providers(
            trace.get_tracer_provider(),
            metrics.get_meter_provider(),
            _logs.get_logger_provider(),
            owned=False,
            audit_delivery=AuditDelivery(enabled=False),
        )
    else:
        providers = build_providers(
            settings, service_name=service_name, service_version=service_version
        )
    trace.set_tracer_provider(providers.tracer_provider)
    metrics.set_meter_provider(providers.meter_provider)
    _logs.set_logger_provider(providers.logger_provider)
    return providers


def _stoppers(providers: Providers) -> list[tuple[str, Callable[[], object]]]:
    """The shutdown of each SDK provider, spans and logs first: the meter provider counts
    what their shutdown could not flush."""
    stoppers: list[tuple[str, Callable[[], object]]] = []
    if isinstance(providers.tracer_provider, TracerProvider):
        stoppers.append(("tracer provider", providers.tracer_provider.shutdown))
    if isinstance(providers.logger_provider, LoggerProvider):
        stoppers.append(("logger provider", providers.logger_provider.shutdown))
    if isinstance(providers.meter_provider, MeterProvider):
        stoppers.append(("meter provider", providers.meter_provider.shutdown))
    return stoppers


def shutdown(providers: Providers, deadline_s: float | None = None) -> bool:
    """Flush and stop ``providers`` if :func:`configure` built them (``owned``), giving up
    after ``deadline_s`` (default: ``AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S``, 3 s).

    Returns True when everything flushed in time. The work runs on a daemon thread, so an
    unreachable Collector costs at most the deadline and never blocks process exit.
    """
    if not providers.owned:
        return True
    if deadline_s is None:
        deadline_s = TelemetrySettings.from_env().shutdown_deadline_s
    done = threading.Event()
    stoppers = _stoppers(providers)

    def _flush_all() -> None:
        for name, stop in stoppers:
            try:
                stop()
            except Exception:
                _log.exception("telemetry shutdown of the %s failed", name)
        done.set()

    started = time.monotonic()
    threading.Thread(target=_flush_all, name="telemetry-shutdown", daemon=True).start()
    finished = done.wait(deadline_s)
    if not finished:
        _log.warning(
            "telemetry flush gave up after %.1f s (exporter unreachable?)",
            time.monotonic() - started,
        )
    return finished
