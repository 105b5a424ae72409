"""agent-runtime's OpenTelemetry layer: the front door.

The service imports only from here. Nothing starts on import, and the layer keeps no state
between calls: what a running application needs is in the objects it keeps.

Usage
-----
::

    import telemetry

    providers = telemetry.configure(service_version="1.2.3")   # once, from OTEL_* variables
    hub = telemetry.Telemetry(audit=store, providers=providers)  # store: a telemetry.AuditOutbox
    hub.start()                                 # the audit trail's flusher, on the running loop

    request = telemetry.RequestTrace(hub.spans, session_id)   # agent.request; owns every end
    run = request.agent("coder")                              # invoke_agent coder
    call = request.chat(run, "gpt-4o-mini", provider="openai")  # chat <model>, under the agent
    call.usage(input_tokens=120, output_tokens=30); call.stop()
    hub.emit(telemetry.AgentSwitched(from_agent="orchestrator", to_agent="coder",
                                     trigger="orchestrator", reason="code", confidence=0.9,
                                     session_id=session_id), span=run.span)
    tool = request.tool("write_file", call_id, run=run)
    waiting = telemetry.SpanRef.of(tool)        # store trace_id, span_id, trace_flags with it
    request.finish(telemetry.names.OUTCOME_COMPLETED)   # ends whatever is still open, once
    hub.metrics.get_metrics(); await hub.audit.aget_audit_log(session_id=session_id)
    await hub.flush()                           # tests: write and ship the audit queue now

    # the deployment's facts, read from the store every few seconds (never in a callback):
    # gauges that every replica reports alike (dashboards take their max, not their sum)
    hub.cluster.update(sessions=12, running=3, pending=1, valid_for_s=15)
    hub.cluster.stale()                         # the store could not be read: report nothing

    # later, maybe in another process: the decision links to the span that waited
    ref = telemetry.SpanRef(trace_id, span_id, trace_flags)          # from the store
    with hub.spans.decision(call_id, "write_file", waiting=ref):
        hub.emit(telemetry.HITLDecisionMade(...), origin=ref)
    resumed = telemetry.RequestTrace(hub.spans, session_id, links=[ref])

    # a person rates the answer later: a log record in that trace, under the request span
    request_ref = telemetry.SpanRef.of(request)                      # stored when it ends
    hub.emit(telemetry.FeedbackGiven(feedback_id=..., evaluation="user_feedback", score=1.0,
                                     session_id=session_id), origin=request_ref)

    await hub.aclose(); telemetry.shutdown(providers)  # flushes, bounded by a deadline

Configuration
-------------
Standard OpenTelemetry variables, read by the SDK as its specification says:
``OTEL_SERVICE_NAME`` (default: the ``service_name`` given to :func:`configure`,
``agent-runtime``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default
``http://localhost:4317`` for gRPC, ``:4318`` for HTTP) and ``OTEL_EXPORTER_OTLP_HEADERS``,
with their per-signal forms ``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_{ENDPOINT,HEADERS}``,
``OTEL_EXPORTER_OTLP_TIMEOUT``, ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG``,
``OTEL_BSP_*`` / ``OTEL_BLRP_*`` (batch sizes, delays, queue sizes),
``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_METRICS_EXEMPLAR_FILTER`` (the SDK's default,
``trace_based``: a histogram point recorded in a sampled span links to it),
``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`` (the SDK's own metrics, exported with ours).

Read by this layer (:class:`TelemetrySettings`), as the specification defines them:

- ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` / ``OTEL_LOGS_EXPORTER``: ``otlp``
  (default), ``console``, ``none``; comma-separated.
- ``OTEL_EXPORTER_OTLP_PROTOCOL`` and ``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_PROTOCOL``:
  ``grpc`` (default) or ``http/protobuf``; a signal's own variable wins.
- ``OTEL_SDK_DISABLED``: ``true`` leaves the API's no-op providers (nothing recorded; the
  audit trail, ``get_metrics()`` and correlation ids still work).

- ``OTEL_BSP_MAX_QUEUE_SIZE`` / ``OTEL_BLRP_MAX_QUEUE_SIZE``: the export queues' bounds
  (default 2048, the SDK's), passed to the SDK and counted against for drops.

This layer's own:

- ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``: capture message text, tool
  arguments and feedback (default off; when on, scrubbed of secrets and truncated).
- ``AGENT_RUNTIME_CAPTURE_MAX_LENGTH``: longest captured value (default 1024 characters).
- ``AGENT_RUNTIME_AUDIT_ARGUMENTS``: keep tool-call arguments in the local audit store
  (default ``true``, scrubbed and truncated; ``false`` keeps none).
- ``AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S``: flush deadline at shutdown (default 3 s).
"""

from opentelemetry.trace import Span

from telemetry import names
from telemetry.asgi import CorrelationHeadersMiddleware, instrument_asgi_app
from telemetry.audit import AuditDelivery, AuditLog, AuditRecord
from telemetry.audit_legacy import LEGACY_AUDIT_FILENAME, read_legacy_audit_file
from telemetry.cluster import ClusterGauges, ClusterSnapshot
from telemetry.correlation import (
    CORRELATION_HEADER,
    TRACERESPONSE_HEADER,
    TraceContextLogFilter,
    correlation_id,
    install_log_correlation,
    traceresponse,
    untraced_context,
)
from telemetry.database import database_spans
from telemetry.events import (
    CATALOG,
    AgentErrorOccurred,
    AgentProcessingCompleted,
    AgentProcessingStarted,
    AgentSwitched,
    ContextTrimmed,
    Decision,
    FeedbackGiven,
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
from telemetry.outbox import AuditOutbox
from telemetry.query import AuditLogger, MetricsCollector
from telemetry.redaction import scrub
from telemetry.request import RequestTrace
from telemetry.settings import TelemetrySettings
from telemetry.setup import (
    Providers,
    build_providers,
    configure,
    configured,
    global_providers,
    shutdown,
)
from telemetry.sink import EventSink
from telemetry.span_ref import SpanRef
from telemetry.spans import AgentRun, ChatCall, RequestSpan, SpanFactory, ToolRun, error_type
from telemetry.subscribers import EventContext, Notification, NotificationService, Subscriber
from telemetry.suppression import suppress_client_spans
from telemetry.timeline import TimelineEntry

__all__ = [
    "CATALOG",
    "CORRELATION_HEADER",
    "LEGACY_AUDIT_FILENAME",
    "TRACERESPONSE_HEADER",
    "AgentErrorOccurred",
    "AgentProcessingCompleted",
    "AgentProcessingStarted",
    "AgentRun",
    "AgentSwitched",
    "AuditDelivery",
    "AuditLog",
    "AuditLogger",
    "AuditOutbox",
    "AuditRecord",
    "ChatCall",
    "ClusterGauges",
    "ClusterSnapshot",
    "ContextTrimmed",
    "CorrelationHeadersMiddleware",
    "Decision",
    "EventContext",
    "EventSink",
    "FeedbackGiven",
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
    "build_providers",
    "configure",
    "configured",
    "correlation_id",
    "database_spans",
    "error_type",
    "global_providers",
    "install_log_correlation",
    "instrument_asgi_app",
    "names",
    "read_legacy_audit_file",
    "scrub",
    "shutdown",
    "suppress_client_spans",
    "traceresponse",
    "untraced_context",
]
