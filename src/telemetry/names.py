"""Every span, event, attribute and metric name the service emits, in one place.

GenAI semantic-convention keys come from the ``opentelemetry.semconv`` constant modules and
are re-exported here, never retyped. Names the conventions lack live in the project
namespace ``agent_runtime.*``; each says which convention it waits for. Dashboards, the
Collector config and the tests depend on these strings: they are the contract.
"""

from __future__ import annotations

from typing import Final, Literal

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv._incubating.attributes import session_attributes as _session
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import exception_attributes as _exception
from opentelemetry.semconv.attributes import server_attributes as _server

# --- semantic-convention keys (re-exported) ------------------------------------------
GEN_AI_OPERATION_NAME: Final = _gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_AGENT_NAME: Final = _gen_ai.GEN_AI_AGENT_NAME
GEN_AI_CONVERSATION_ID: Final = _gen_ai.GEN_AI_CONVERSATION_ID
GEN_AI_TOOL_NAME: Final = _gen_ai.GEN_AI_TOOL_NAME
GEN_AI_TOOL_CALL_ID: Final = _gen_ai.GEN_AI_TOOL_CALL_ID
GEN_AI_TOOL_CALL_ARGUMENTS: Final = _gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS
GEN_AI_PROVIDER_NAME: Final = _gen_ai.GEN_AI_PROVIDER_NAME
GEN_AI_INPUT_MESSAGES: Final = _gen_ai.GEN_AI_INPUT_MESSAGES
GEN_AI_TOOL_TYPE: Final = _gen_ai.GEN_AI_TOOL_TYPE
GEN_AI_REQUEST_MODEL: Final = _gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_REQUEST_STREAM: Final = _gen_ai.GEN_AI_REQUEST_STREAM
GEN_AI_RESPONSE_ID: Final = _gen_ai.GEN_AI_RESPONSE_ID
GEN_AI_RESPONSE_MODEL: Final = _gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_RESPONSE_FINISH_REASONS: Final = _gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = _gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
GEN_AI_USAGE_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_TOKEN_TYPE: Final = _gen_ai.GEN_AI_TOKEN_TYPE
SERVER_ADDRESS: Final = _server.SERVER_ADDRESS
SERVER_PORT: Final = _server.SERVER_PORT
ERROR_TYPE: Final = _error.ERROR_TYPE
EXCEPTION_MESSAGE: Final = _exception.EXCEPTION_MESSAGE
EXCEPTION_STACKTRACE: Final = _exception.EXCEPTION_STACKTRACE
SESSION_ID: Final = _session.SESSION_ID
GEN_AI_EVALUATION_NAME: Final = _gen_ai.GEN_AI_EVALUATION_NAME
GEN_AI_EVALUATION_SCORE_VALUE: Final = _gen_ai.GEN_AI_EVALUATION_SCORE_VALUE
GEN_AI_EVALUATION_SCORE_LABEL: Final = _gen_ai.GEN_AI_EVALUATION_SCORE_LABEL
GEN_AI_EVALUATION_EXPLANATION: Final = _gen_ai.GEN_AI_EVALUATION_EXPLANATION

OPERATION_INVOKE_AGENT: Final = _gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value
OPERATION_EXECUTE_TOOL: Final = _gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value
OPERATION_CHAT: Final = _gen_ai.GenAiOperationNameValues.CHAT.value
TOOL_TYPE_FUNCTION: Final = "function"
TOKEN_TYPE_INPUT: Final = _gen_ai.GenAiTokenTypeValues.INPUT.value
TOKEN_TYPE_OUTPUT: Final = _gen_ai.GenAiTokenTypeValues.OUTPUT.value

METRIC_CLIENT_OPERATION_DURATION: Final = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
METRIC_CLIENT_TOKEN_USAGE: Final = _gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
# opentelemetry-util-genai's names; the semconv package has no constant for them yet.
METRIC_INVOKE_AGENT_DURATION: Final = "gen_ai.invoke_agent.duration"
METRIC_EXECUTE_TOOL_DURATION: Final = "gen_ai.execute_tool.duration"
# The conventions define no evaluation metric yet: the score histogram's name in the
# evaluation work on opentelemetry-util-genai (unit 1, scores in [0, 1]); migrate when they do.
METRIC_EVALUATION_SCORE: Final = "gen_ai.evaluation.score"

# --- handoffs: contrib's OpenAI Agents instrumentation shape; migrate when semconv has it -
GEN_AI_HANDOFF_FROM_AGENT: Final = "gen_ai.handoff.from_agent"
GEN_AI_HANDOFF_TO_AGENT: Final = "gen_ai.handoff.to_agent"
HANDOFF_TOOL_PREFIX: Final = "transfer_to_"

# --- instrumentation scopes (tracer, meter and logger names) ------------------------------
SCOPE: Final = "agent_runtime"
"""The service's spans, events and metrics."""
AUDIT_SCOPE: Final = "agent_runtime.audit"
"""The audit trail's OTel log records."""
TELEMETRY_SCOPE: Final = "agent_runtime.telemetry"
"""The layer's own health (what it dropped)."""

# --- span names ----------------------------------------------------------------------
SPAN_AGENT_REQUEST: Final = "agent.request"
SPAN_HITL_DECISION: Final = "hitl.decision"

# --- span event names (docs/architecture.md, the event catalogue) -----------------------------
EVENT_AGENT_STARTED: Final = "agent.processing_started"
EVENT_AGENT_COMPLETED: Final = "agent.processing_completed"
EVENT_AGENT_ERROR: Final = "agent.error"
EVENT_AGENT_SWITCHED: Final = "agent.switched"
EVENT_TOOL_EXECUTION_REQUESTED: Final = "tool.execution_requested"
EVENT_TOOL_APPROVAL_REQUIRED: Final = "tool.approval_required"
EVENT_HITL_APPROVAL_REQUESTED: Final = "hitl.approval_requested"
EVENT_HITL_DECISION_MADE: Final = "hitl.decision_made"
EVENT_SESSION_CREATED: Final = "session.created"
EVENT_MESSAGE_ADDED: Final = "session.message_added"
EVENT_SESSION_UPDATED: Final = "session.updated"
EVENT_SESSION_DELETED: Final = "session.deleted"
EVENT_TOOL_EXECUTION_COMPLETED: Final = "tool.execution_completed"
"""Not a span event: the ``execute_tool`` span's end, named for the timeline and subscribers."""
EVENT_CONTEXT_TRIMMED: Final = "agent_runtime.context.trimmed"
EVENT_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
"""The GenAI conventions' evaluation event (a person's feedback on an answer), a log record
in the evaluated request's trace; the Python semconv package has no event-name constants yet
(migrate when it has ``EVENT_GEN_AI_EVALUATION_RESULT``, as the JavaScript package does)."""

# --- audit record types: the seed's names, which its users filter by (docs/http.md) ----------
AUDIT_AGENT_SWITCHED: Final = "agent_switched"
AUDIT_TOOL_APPROVAL_REQUIRED: Final = "tool_approval_required"
AUDIT_HITL_APPROVAL_REQUESTED: Final = "hitl_approval_requested"
AUDIT_HITL_DECISION_MADE: Final = "hitl_decision_made"
AUDIT_AGENT_ERROR: Final = "agent_error"
AUDIT_SESSION_DELETED: Final = "session_deleted"
AUDIT_USER_FEEDBACK: Final = "user_feedback"

# --- project attributes (no convention exists yet) ----------------------------------------
AGENT_OUTCOME: Final = "agent_runtime.agent.outcome"
REQUEST_OUTCOME: Final = "agent_runtime.request.outcome"
SWITCH_FROM: Final = "agent_runtime.switch.from"
SWITCH_TO: Final = "agent_runtime.switch.to"
SWITCH_TRIGGER: Final = "agent_runtime.switch.trigger"
SWITCH_REASON: Final = "agent_runtime.switch.reason"
SWITCH_CONFIDENCE: Final = "agent_runtime.switch.confidence"
TOOL_OUTCOME: Final = "agent_runtime.tool.outcome"
APPROVAL_REASON: Final = "agent_runtime.approval.reason"
APPROVAL_TIMEOUT_S: Final = "agent_runtime.approval.timeout_s"
HITL_DECISION: Final = "agent_runtime.hitl.decision"
HITL_OUTCOME: Final = "agent_runtime.hitl.outcome"
HITL_MODIFIED: Final = "agent_runtime.hitl.modified"
HITL_WAIT_MS: Final = "agent_runtime.hitl.wait_ms"
HITL_FEEDBACK: Final = "agent_runtime.hitl.feedback"
HITL_DECIDED_BY: Final = "agent_runtime.hitl.decided_by"
"""Who decided (the gateway's user id): only its ``_sha256`` digest unless content capture is
on; the audit record's ``decided_by`` keeps the id itself."""
MESSAGE_ROLE: Final = "agent_runtime.message.role"
MESSAGE_CONTENT_LENGTH: Final = "agent_runtime.message.content_length"
MESSAGE_CONTENT: Final = "agent_runtime.message.content"
ERROR_MESSAGE: Final = "agent_runtime.error.message"
AUDIT_EVENT_TYPE: Final = "agent_runtime.audit.event_type"
AUDIT_RECORD_ID: Final = "agent_runtime.audit.record_id"
TELEMETRY_SIGNAL: Final = "agent_runtime.telemetry.signal"
CONTEXT_DROPPED_MESSAGES: Final = "agent_runtime.context.dropped_messages"
CONTEXT_DROPPED_TOKENS: Final = "agent_runtime.context.dropped_tokens"
CONTEXT_SENT_TOKENS: Final = "agent_runtime.context.sent_tokens"
CONTEXT_BUDGET_TOKENS: Final = "agent_runtime.context.budget_tokens"
CONTEXT_OVER_BUDGET: Final = "agent_runtime.context.over_budget"
FEEDBACK_ID: Final = "agent_runtime.feedback.id"
FEEDBACK_COMMENT: Final = "agent_runtime.feedback.comment"
"""Prefix of the comment's ``_length`` and ``_sha256``; the comment's text itself, with
capture on, is ``gen_ai.evaluation.explanation``."""
SIGNAL_TRACES: Final = "traces"
SIGNAL_LOGS: Final = "logs"

# --- project metrics (docs/architecture.md, docs/pipeline.md) ---------------------------------
METRIC_AGENT_SWITCHES: Final = "agent_runtime.agent.switches"
METRIC_TOOL_CALLS: Final = "agent_runtime.tool.calls"
METRIC_HITL_DECISIONS: Final = "agent_runtime.hitl.decisions"
METRIC_HITL_WAIT: Final = "agent_runtime.hitl.wait.duration"
METRIC_ERRORS: Final = "agent_runtime.errors"
METRIC_SESSIONS_ACTIVE: Final = "agent_runtime.sessions.active"
"""Gauge, read from the store (the same on every replica): sessions not deleted."""
METRIC_SESSIONS_RUNNING: Final = "agent_runtime.sessions.running"
"""Gauge, read from the store: sessions with a run in progress or waiting for a human."""
METRIC_APPROVALS_PENDING: Final = "agent_runtime.approvals.pending"
"""Gauge, read from the store: approvals waiting for a human decision."""
METRIC_APPROVALS_OLDEST_PENDING_AGE: Final = "agent_runtime.approvals.oldest_pending_age"
"""Gauge (s), read from the store: how long the oldest pending approval has waited."""
METRIC_AUDIT_OUTBOX_BACKLOG: Final = "agent_runtime.audit.outbox.backlog"
"""Gauge, read from the store: audit records the Collector has not acknowledged yet."""
METRIC_TELEMETRY_DROPPED: Final = "agent_runtime.telemetry.dropped"
METRIC_CONTEXT_TRIMMED: Final = "agent_runtime.context.trimmed_messages"

# --- outcomes: normal endings, never errors (docs/architecture.md) ----------------------------
# The Literal types say which values each field takes; the constants name the values, so code
# that sets or compares an outcome never retypes the string (mypy reads a Final string as its
# literal type, so a constant type-checks wherever its Literal is expected; a test checks that
# the two lists agree).
Outcome = Literal[
    "completed", "handed_off", "rejected", "timeout", "disconnected", "shutdown", "error"
]
"""How an agent run or a request ended (``agent_runtime.agent.outcome``,
``agent_runtime.request.outcome``); only ``error`` is a failure."""
ToolOutcome = Literal["completed", "failed", "rejected"]
"""How a tool call ended, for the catalogue and the seed's ``tool_executions`` counts."""
ToolSpanOutcome = Literal["completed", "failed", "rejected", "timeout", "disconnected", "shutdown"]
"""``agent_runtime.tool.outcome``: a tool call's end, or the request's when it ended first."""
HITLOutcome = Literal["decided", "timeout"]
"""Whether a human answered or the approval timed out (REJECT on the human's behalf)."""
Decision = Literal["APPROVE", "EDIT", "REJECT"]
"""A human's answer to an approval."""
SwitchTrigger = Literal["user", "orchestrator", "agent"]
"""Who moved the conversation to another agent."""
ToolStage = Literal["requested", "requires_approval"]
"""The tool-call counts that are not an outcome (``agent_runtime.tool.calls`` outcome values
and the seed's ``tool_executions`` keys)."""

OUTCOME_COMPLETED: Final = "completed"
OUTCOME_HANDED_OFF: Final = "handed_off"
OUTCOME_REJECTED: Final = "rejected"
OUTCOME_TIMEOUT: Final = "timeout"
OUTCOME_DISCONNECTED: Final = "disconnected"
OUTCOME_SHUTDOWN: Final = "shutdown"
OUTCOME_ERROR: Final = "error"
OUTCOME_FAILED: Final = "failed"
OUTCOME_DECIDED: Final = "decided"
DECISION_APPROVE: Final = "APPROVE"
DECISION_EDIT: Final = "EDIT"
DECISION_REJECT: Final = "REJECT"
TOOL_REQUESTED: Final = "requested"
TOOL_REQUIRES_APPROVAL: Final = "requires_approval"
