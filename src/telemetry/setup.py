"""Configure OpenTelemetry once, from the standard environment variables; shut it down once,
with a deadline.

``configure()`` builds the tracer, meter and logger providers (or takes the ones a test
passes in) and registers them globally. Importing the package starts nothing. Exporters
are chosen by ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` / ``OTEL_LOGS_EXPORTER``
(``otlp`` default, ``console``, ``none``, comma-separated) and
``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc`` default, ``http/protobuf``);
endpoints, headers, timeouts, batch sizes, sampler and resource come from the SDK's own
``OTEL_*`` variables. ``OTEL_SDK_DISABLED=true`` leaves the API's no-op providers in place.

A missing Collector never fails or slows a request: exports run on the SDK's background
threads, full queues drop and count. The providers are built with ``shutdown_on_exit=False``
and :func:`shutdown` bounds flushing by a deadline, because the SDK's own shutdown waits up
to 30 s for an unreachable endpoint.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from importlib import metadata

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, ExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from telemetry import audit
from telemetry._exporters import CountingBatchLogRecordProcessor, CountingBatchSpanProcessor
from telemetry.metrics import dropped_counter
from telemetry.settings import TelemetrySettings

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_configured: Providers | None = None
DEFAULT_SERVICE_NAME = "agent-runtime"


@dataclass(frozen=True, slots=True)
class Providers:
    """The providers in use; ``None`` where the API's no-op provider stays (disabled)."""

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    logger_provider: _logs.LoggerProvider
    owned: bool
    """True when ``configure`` built them and ``shutdown`` must flush them."""


def _service_version() -> str:
    try:
        return metadata.version("agent-runtime")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _resource() -> Resource:
    attributes = {SERVICE_VERSION: _service_version()}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = DEFAULT_SERVICE_NAME
    return Resource.create(attributes)


def _names(variable: str) -> list[str]:
    return [v.strip().lower() for v in os.environ.get(variable, "otlp").split(",") if v.strip()]


def _grpc() -> bool:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").strip().lower()
    return protocol == "grpc"


def _span_exporters() -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in _names("OTEL_TRACES_EXPORTER"):
        if name == "otlp" and _grpc():
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter as HTTPSpanExporter,
            )

            exporters.append(HTTPSpanExporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
    return exporters


def _metric_readers() -> list[MetricReader]:
    exporters: list[MetricExporter] = []
    for name in _names("OTEL_METRICS_EXPORTER"):
        if name == "otlp" and _grpc():
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            exporters.append(OTLPMetricExporter())
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter as HTTPMetricExporter,
            )

            exporters.append(HTTPMetricExporter())
        elif name == "console":
            exporters.append(ConsoleMetricExporter())
    return [PeriodicExportingMetricReader(exporter) for exporter in exporters]


def _log_exporters() -> list[LogRecordExporter]:
    exporters: list[LogRecordExporter] = []
    for name in _names("OTEL_LOGS_EXPORTER"):
        if name == "otlp" and _grpc():
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

            exporters.append(OTLPLogExporter())
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http._log_exporter import (
                OTLPLogExporter as HTTPLogExporter,
            )

            exporters.append(HTTPLogExporter())
        elif name == "console":
            exporters.append(ConsoleLogRecordExporter())
    return exporters


def exemplar_filter() -> ExemplarFilter | None:
    """No exemplars unless ``OTEL_METRICS_EXEMPLAR_FILTER`` asks for them (``None``: the SDK
    reads the variable).

    The SDK's default (``trace_based``) offers every histogram point recorded inside a
    sampled span to an exemplar reservoir, ~2 µs a point here (13 points an agent run),
    and the pipeline drops them: the Collector's Prometheus exporter serves them only with
    ``enable_open_metrics``. Set ``trace_based`` together with that option to have them.
    """
    if os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER", "").strip():
        return None
    return AlwaysOffExemplarFilter()


def exemplars_requested() -> bool:
    """Whether ``OTEL_METRICS_EXEMPLAR_FILTER`` asks for exemplars (anything but unset or
    ``always_off``): histogram points then need their span context when recorded."""
    chosen = os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER", "").strip().lower()
    return chosen not in ("", "always_off")


def _build_providers() -> Providers:
    resource = _resource()
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=_metric_readers(),
        shutdown_on_exit=False,
        exemplar_filter=exemplar_filter(),
    )
    dropped = dropped_counter(meter_provider.get_meter("agent_runtime.telemetry"))
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for span_exporter in _span_exporters():
        tracer_provider.add_span_processor(CountingBatchSpanProcessor(span_exporter, dropped))
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    log_exporters = _log_exporters()
    audit.delivery.enabled = bool(log_exporters)
    for log_exporter in log_exporters:
        logger_provider.add_log_record_processor(
            CountingBatchLogRecordProcessor(log_exporter, dropped)
        )
    return Providers(tracer_provider, meter_provider, logger_provider, owned=True)


def _disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def configure(
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    logger_provider: _logs.LoggerProvider | None = None,
) -> Providers:
    """Set up the global providers once; a second call warns and returns the first result.

    Pass all three providers to use your own (tests pass in-memory exporters); pass none to
    build them from the environment.
    """
    global _configured
    with _lock:
        if _configured is not None:
            _log.warning("telemetry is already configured; keeping the first configuration")
            return _configured
        if tracer_provider is not None and meter_provider is not None and logger_provider:
            providers = Providers(tracer_provider, meter_provider, logger_provider, owned=False)
        elif _disabled():
            audit.delivery.enabled = False
            providers = Providers(
                trace.get_tracer_provider(),
                metrics.get_meter_provider(),
                _logs.get_logger_provider(),
                owned=False,
            )
        else:
            providers = _build_providers()
        if providers.owned or tracer_provider is not None:
            trace.set_tracer_provider(providers.tracer_provider)
            metrics.set_meter_provider(providers.meter_provider)
            _logs.set_logger_provider(providers.logger_provider)
        _configured = providers
        return providers


def configured() -> Providers | None:
    """The active configuration, if any."""
    return _configured


def shutdown(deadline_s: float | None = None) -> bool:
    """Flush and stop the providers ``configure`` built, giving up after ``deadline_s``
    (default: ``AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S``, 3 s).

    Returns True when everything flushed in time. The work runs on a daemon thread, so an
    unreachable Collector costs at most the deadline and never blocks process exit.
    """
    providers = _configured
    if providers is None or not providers.owned:
        return True
    if deadline_s is None:
        deadline_s = TelemetrySettings.from_env().shutdown_deadline_s
    done = threading.Event()

    def _flush_all() -> None:
        for provider in (
            providers.tracer_provider,
            providers.logger_provider,
            providers.meter_provider,
        ):
            stop = getattr(provider, "shutdown", None)
            try:
                if callable(stop):
                    stop()
            except Exception:
                _log.exception("telemetry shutdown of %s failed", type(provider).__name__)
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
