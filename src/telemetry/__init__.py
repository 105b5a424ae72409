"""agent-runtime's OpenTelemetry layer: the front door.

The service imports only from here. Nothing starts on import.

Usage
-----
::

    import telemetry

    telemetry.configure()                      # once per process, from OTEL_* variables
    hub = telemetry.Telemetry(audit_path=data_dir / "audit.db")

    request = hub.spans.request(session_id)    # agent.request; correlation id = trace id
    run = hub.spans.agent("coder", conversation_id=session_id, parent=request.context)
    call = run.chat("gpt-4o-mini", provider="openai")   # chat <model>, a child of the agent
    call.usage(input_tokens=120, output_tokens=30); call.stop()
    hub.emit(telemetry.AgentSwitched(from_agent="orchestrator", to_agent="coder",
                                     trigger="orchestrator", reason="code", confidence=0.9,
                                     session_id=session_id), span=run.span)
    run.stop("completed"); request.stop("completed")
    hub.metrics.get_metrics(); hub.audit.get_audit_log(session_id=session_id)
    hub.flush()                                # tests: emit the audit log records now

    telemetry.shutdown()                       # flushes, bounded by a deadline

Configuration
-------------
Standard OpenTelemetry variables, read by the SDK as its specification says:
``OTEL_SERVICE_NAME`` (default ``agent-runtime``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4317``),
``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc`` default, or ``http/protobuf``),
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_TIMEOUT``,
``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` / ``OTEL_LOGS_EXPORTER`` (``otlp``
default, ``console``, ``none``; comma-separated), ``OTEL_TRACES_SAMPLER`` and
``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_BSP_*`` / ``OTEL_BLRP_*`` (batch sizes and delays),
``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_SDK_DISABLED`` (``true``: no-op providers),
``OTEL_METRICS_EXEMPLAR_FILTER`` (default here ``always_off``, not the SDK's
``trace_based``: the Collector's Prometheus exporter drops exemplars unless
``enable_open_metrics`` is set; see :func:`telemetry.setup.exemplar_filter`).

This layer's own:

- ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``: capture message text, tool
  arguments and feedback (default off; when on, scrubbed of secrets and truncated).
- ``AGENT_RUNTIME_CAPTURE_MAX_LENGTH``: longest captured value (default 1024 characters).
- ``AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S``: flush deadline at shutdown (default 3 s).
"""

from opentelemetry.trace import Span

from telemetry import names
from telemetry.audit import AuditLog, AuditRecord
from telemetry.correlation import (
    CORRELATION_HEADER,
    TRACERESPONSE_HEADER,
    TraceContextLogFilter,
    correlation_id,
    install_log_correlation,
    traceresponse,
    untraced_context,
)
from telemetry.events import (
    CATALOG,
    AgentErrorOccurred,
    AgentProcessingCompleted,
    AgentProcessingStarted,
    AgentSwitched,
    ContextTrimmed,
    Decision,
    HITLApprovalRequested,
    HITLDecisionMade,
    MessageAdded,
    SessionCreated,
    SessionDeleted,
    SessionUpdated,
    SwitchTrigger,
    TelemetryEvent,
    ToolApprovalRequired,
    ToolExecutionCompleted,
    ToolExecutionRequested,
    ToolOutcome,
)
from telemetry.hub import Telemetry
from telemetry.query import AuditLogger, MetricsCollector
from telemetry.redaction import scrub
from telemetry.request import RequestTrace
from telemetry.settings import TelemetrySettings
from telemetry.setup import Providers, configure, configured, shutdown
from telemetry.sink import EventSink
from telemetry.span_ref import SpanRef
from telemetry.spans import AgentRun, ChatCall, RequestSpan, SpanFactory, ToolRun, error_type
from telemetry.subscribers import EventContext, Notification, NotificationService, Subscriber
from telemetry.timeline import TimelineEntry

__all__ = [
    "CATALOG",
    "CORRELATION_HEADER",
    "TRACERESPONSE_HEADER",
    "AgentErrorOccurred",
    "AgentProcessingCompleted",
    "AgentProcessingStarted",
    "AgentRun",
    "AgentSwitched",
    "AuditLog",
    "AuditLogger",
    "AuditRecord",
    "ChatCall",
    "ContextTrimmed",
    "Decision",
    "EventContext",
    "EventSink",
    "HITLApprovalRequested",
    "HITLDecisionMade",
    "MessageAdded",
    "MetricsCollector",
    "Notification",
    "NotificationService",
    "Providers",
    "RequestSpan",
    "RequestTrace",
    "SessionCreated",
    "SessionDeleted",
    "SessionUpdated",
    "Span",
    "SpanFactory",
    "SpanRef",
    "Subscriber",
    "SwitchTrigger",
    "Telemetry",
    "TelemetryEvent",
    "TelemetrySettings",
    "TimelineEntry",
    "ToolApprovalRequired",
    "ToolExecutionCompleted",
    "ToolExecutionRequested",
    "ToolOutcome",
    "ToolRun",
    "TraceContextLogFilter",
    "configure",
    "configured",
    "correlation_id",
    "error_type",
    "install_log_correlation",
    "names",
    "scrub",
    "shutdown",
    "traceresponse",
    "untraced_context",
]
