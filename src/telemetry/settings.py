"""What the telemetry layer captures, where it exports and how long it may take, decided once
from the environment.

This is the only reader of the environment in the layer: the rest asks a
:class:`TelemetrySettings` instance, never ``os.environ`` (pydantic-ai's
``InstrumentationSettings`` is the model). OpenTelemetry's variables that the SDK reads
itself (endpoints, headers, timeouts, sampler, resource, batch delays, exemplar filter…)
stay with the SDK, which reads them as its specification says; read here are only the
layer's own knobs and the OTel variables whose choice the layer makes: which exporters,
which OTLP protocol per signal, the export queue sizes it needs to count drops against, and
whether the SDK is disabled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

_N = TypeVar("_N", int, float)

OtlpProtocol = Literal["grpc", "http/protobuf"]
"""An OTLP transport the layer can build: gRPC, or protobuf over HTTP."""

OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: Final = (
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
)
"""Capture message text, tool arguments and file contents: ``true`` / ``span_only`` /
``event_only`` / ``span_and_event`` turn it on; anything else (the default) keeps it off."""

AGENT_RUNTIME_CAPTURE_MAX_LENGTH: Final = "AGENT_RUNTIME_CAPTURE_MAX_LENGTH"
"""Longest captured value, in characters, once scrubbed (default 1024)."""

AGENT_RUNTIME_AUDIT_ARGUMENTS: Final = "AGENT_RUNTIME_AUDIT_ARGUMENTS"
"""Keep the arguments of approved, edited and rejected tool calls in the local audit store
(scrubbed and truncated): ``true`` (the default) or ``false``. Exported log records follow
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` whatever this says."""

AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S: Final = "AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S"
"""How long shutdown may spend flushing exporters before giving up (default 3 s)."""

OTEL_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"
"""``true``: build nothing, leave the API's no-op providers in place (default ``false``)."""

OTEL_TRACES_EXPORTER: Final = "OTEL_TRACES_EXPORTER"
OTEL_METRICS_EXPORTER: Final = "OTEL_METRICS_EXPORTER"
OTEL_LOGS_EXPORTER: Final = "OTEL_LOGS_EXPORTER"
"""Exporters per signal, comma-separated: ``otlp`` (default), ``console``, ``none``."""

OTEL_EXPORTER_OTLP_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""Where the Collector listens (the SDK's exporters read it; the layer only reports it)."""

OTEL_EXPORTER_OTLP_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_PROTOCOL"
"""The OTLP transport of every signal without its own: ``grpc`` (default) or
``http/protobuf``."""

OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"
"""The OTLP transport of one signal, overriding ``OTEL_EXPORTER_OTLP_PROTOCOL``. (The
per-signal ``_ENDPOINT`` and ``_HEADERS`` variables are read by the SDK's exporters.)"""

OTEL_BSP_MAX_QUEUE_SIZE: Final = "OTEL_BSP_MAX_QUEUE_SIZE"
OTEL_BLRP_MAX_QUEUE_SIZE: Final = "OTEL_BLRP_MAX_QUEUE_SIZE"
"""Export queue sizes of the span and log record batch processors (default 2048 each, the
SDK's); the layer passes them to the SDK and counts drops against them."""

DEFAULT_QUEUE_SIZE: Final = 2048
"""The SDK's default queue size for both batch processors."""

_FALSE_VALUES = frozenset({"false", "0", "no", "off"})
_TRUE_VALUES = frozenset({"true", "1", "yes", "on", "span_only", "event_only", "span_and_event"})


@dataclass(frozen=True, kw_only=True, slots=True)
class TelemetrySettings:
    """One object that decides what is captured and what is built.

    Attributes:
        capture_content: record message text, tool arguments and feedback. Off by default:
            prompts and files routinely hold secrets and personal data; lengths and hashes
            are always recorded instead.
        capture_max_length: captured values are cut to this many characters, so one huge
            file cannot bloat every exporter queue.
        shutdown_deadline_s: upper bound on flushing at shutdown; an unreachable Collector
            must not hold the process (the SDK's own shutdown waits 30 s).
        audit_arguments: keep tool-call arguments in the local audit store, so an audit of
            an approval says what was approved. On by default: the store is the service's
            own, and the values are scrubbed of secrets and truncated; off for deployments
            whose audit store must hold no content at all.
        sdk_disabled: ``OTEL_SDK_DISABLED``: nothing is built or recorded.
        traces_exporters, metrics_exporters, logs_exporters: the exporter names per signal
            (``otlp``, ``console``; empty for ``none``).
        traces_protocol, metrics_protocol, logs_protocol: the OTLP transport per signal, as
            the specification defines it: the signal's own variable, else the general one,
            else gRPC. An unknown value falls back the same way.
        span_queue_size, log_queue_size: the batch processors' queue bounds.
        otlp_endpoint: ``OTEL_EXPORTER_OTLP_ENDPOINT`` as given (None: the SDK's default),
            for messages that say where telemetry goes.
    """

    capture_content: bool = False
    capture_max_length: int = 1024
    shutdown_deadline_s: float = 3.0
    audit_arguments: bool = True
    sdk_disabled: bool = False
    traces_exporters: tuple[str, ...] = ("otlp",)
    metrics_exporters: tuple[str, ...] = ("otlp",)
    logs_exporters: tuple[str, ...] = ("otlp",)
    traces_protocol: OtlpProtocol = "grpc"
    metrics_protocol: OtlpProtocol = "grpc"
    logs_protocol: OtlpProtocol = "grpc"
    span_queue_size: int = DEFAULT_QUEUE_SIZE
    log_queue_size: int = DEFAULT_QUEUE_SIZE
    otlp_endpoint: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TelemetrySettings:
        """Read the settings from the environment; malformed numbers fall back to defaults."""
        env = os.environ if environ is None else environ
        capture = env.get(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, "").strip().lower()
        protocol = _protocol(env.get(OTEL_EXPORTER_OTLP_PROTOCOL), "grpc")
        return cls(
            capture_content=capture in _TRUE_VALUES,
            capture_max_length=_positive(env.get(AGENT_RUNTIME_CAPTURE_MAX_LENGTH), 1024),
            shutdown_deadline_s=_positive(
                env.get(AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S), 3.0
            ),
            audit_arguments=env.get(AGENT_RUNTIME_AUDIT_ARGUMENTS, "true").strip().lower()
            not in _FALSE_VALUES,
            sdk_disabled=env.get(OTEL_SDK_DISABLED, "").strip().lower() == "true",
            otlp_endpoint=env.get(OTEL_EXPORTER_OTLP_ENDPOINT) or None,
            traces_exporters=_exporters(env.get(OTEL_TRACES_EXPORTER)),
            metrics_exporters=_exporters(env.get(OTEL_METRICS_EXPORTER)),
            logs_exporters=_exporters(env.get(OTEL_LOGS_EXPORTER)),
            traces_protocol=_protocol(env.get(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL), protocol),
            metrics_protocol=_protocol(env.get(OTEL_EXPORTER_OTLP_METRICS_PROTOCOL), protocol),
            logs_protocol=_protocol(env.get(OTEL_EXPORTER_OTLP_LOGS_PROTOCOL), protocol),
            span_queue_size=_positive(env.get(OTEL_BSP_MAX_QUEUE_SIZE), DEFAULT_QUEUE_SIZE),
            log_queue_size=_positive(env.get(OTEL_BLRP_MAX_QUEUE_SIZE), DEFAULT_QUEUE_SIZE),
        )


def _exporters(raw: str | None) -> tuple[str, ...]:
    names = [name.strip().lower() for name in (raw or "otlp").split(",") if name.strip()]
    return tuple(name for name in names if name != "none")


def _protocol(raw: str | None, default: OtlpProtocol) -> OtlpProtocol:
    value = (raw or "").strip().lower()
    if value == "grpc":
        return "grpc"
    if value == "http/protobuf":
        return "http/protobuf"
    return default


def _positive(raw: str | None, default: _N) -> _N:
    if raw is None:
        return default
    try:
        value = type(default)(raw)
    except ValueError:
        return default
    return value if value > 0 else default
