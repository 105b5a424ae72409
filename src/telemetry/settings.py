"""What the telemetry layer captures and how long it may take, decided once from the env.

The rest of the layer asks a :class:`TelemetrySettings` instance, never ``os.environ``
(pydantic-ai's ``InstrumentationSettings`` is the model). OpenTelemetry's own variables
(``OTEL_EXPORTER_OTLP_*``, ``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``…) stay with the
SDK, which reads them as its specification says; only the few knobs the SDK lacks are here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

_N = TypeVar("_N", int, float)

OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = (
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
)
"""Capture message text, tool arguments and file contents: ``true`` / ``span_only`` /
``event_only`` / ``span_and_event`` turn it on; anything else (the default) keeps it off."""

AGENT_RUNTIME_CAPTURE_MAX_LENGTH = "AGENT_RUNTIME_CAPTURE_MAX_LENGTH"
"""Longest captured value, in characters, once scrubbed (default 1024)."""

AGENT_RUNTIME_AUDIT_ARGUMENTS = "AGENT_RUNTIME_AUDIT_ARGUMENTS"
"""Keep the arguments of approved, edited and rejected tool calls in the local audit store
(scrubbed and truncated): ``true`` (the default) or ``false``. Exported log records follow
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` whatever this says."""

AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S = "AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S"
"""How long shutdown may spend flushing exporters before giving up (default 3 s)."""

_FALSE_VALUES = frozenset({"false", "0", "no", "off"})
_TRUE_VALUES = frozenset({"true", "1", "yes", "on", "span_only", "event_only", "span_and_event"})


@dataclass(frozen=True, kw_only=True, slots=True)
class TelemetrySettings:
    """One object that decides what is captured.

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
    """

    capture_content: bool = False
    capture_max_length: int = 1024
    shutdown_deadline_s: float = 3.0
    audit_arguments: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TelemetrySettings:
        """Read the settings from the environment; malformed numbers fall back to defaults."""
        env = os.environ if environ is None else environ
        capture = env.get(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, "").strip().lower()
        return cls(
            capture_content=capture in _TRUE_VALUES,
            capture_max_length=_positive(env.get(AGENT_RUNTIME_CAPTURE_MAX_LENGTH), 1024),
            shutdown_deadline_s=_positive(
                env.get(AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S), 3.0
            ),
            audit_arguments=env.get(AGENT_RUNTIME_AUDIT_ARGUMENTS, "true").strip().lower()
            not in _FALSE_VALUES,
        )


def _positive(raw: str | None, default: _N) -> _N:
    if raw is None:
        return default
    try:
        value = type(default)(raw)
    except ValueError:
        return default
    return value if value > 0 else default
