"""The seed's twelve domain events (plus the tool span's end), one small class each: the
agents' and the tools' here, the conversation's in :mod:`telemetry.events.sessions`, a
person's feedback in :mod:`telemetry.events.feedback`; :data:`CATALOG` lists them all.

Each class carries its span-event name and turns itself into attributes; where each one
lands (span start/end, span event, metric, audit) is the catalogue of docs/architecture.md, and the
class flags of :class:`~telemetry.events.TelemetryEvent` say the same to the emit call:

==========================  =======  =======  ==================
event                       on_span  audited  durable_before_ack
==========================  =======  =======  ==================
AgentProcessingStarted      no       no       no
AgentProcessingCompleted    no       no       no
AgentErrorOccurred          no       yes      no
AgentSwitched               yes      yes      no
ToolExecutionRequested      yes      no       no
ToolApprovalRequired        yes      yes      no
HITLApprovalRequested       yes      yes      no
HITLDecisionMade            yes      yes      yes
SessionCreated              yes      no       no
MessageAdded                yes      no       no
SessionUpdated              yes      no       no
SessionDeleted              yes      yes      yes
ToolExecutionCompleted      no       no       no
ContextTrimmed              yes      no       no
FeedbackGiven               no       yes      yes
==========================  =======  =======  ==================

Audited events also carry ``audit_type``, the seed's name for their audit record
(``agent_switched``, ``tool_approval_required``, ``hitl_approval_requested``,
``hitl_decision_made``, ``agent_error``, ``session_deleted``; a person's feedback on an
answer, :class:`~telemetry.events.feedback.FeedbackGiven`, ``user_feedback``), and say which
of their fields the record keeps under the seed's names
(:meth:`~telemetry.events.TelemetryEvent.audit_details`).

``on_span`` no: the event is a span's start or end, not a span event (feedback: a log record
about a span that has ended). ``durable_before_ack``:
the event acknowledges a human action (the answer to an approval, a delete), so its audit
record is committed before ``emit`` returns; the other audited events are committed
together when their request ends, or within half a second while it waits for a human (see
:mod:`telemetry.audit`).
Names come from :mod:`telemetry.names`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import Field, InstanceOf

from telemetry import names as n
from telemetry.events._base import Attributes, TelemetryEvent, content_attributes
from telemetry.events.feedback import FeedbackGiven
from telemetry.events.sessions import (
    ContextTrimmed,
    MessageAdded,
    SessionCreated,
    SessionDeleted,
    SessionUpdated,
)
from telemetry.redaction import digest, safe_content, safe_json, scrub
from telemetry.settings import TelemetrySettings

SwitchTrigger = n.SwitchTrigger
Decision = n.Decision
ToolOutcome = n.ToolOutcome


class AgentProcessingStarted(TelemetryEvent):
    """An agent took the conversation: the start of its ``invoke_agent`` span."""

    name: ClassVar[str] = n.EVENT_AGENT_STARTED
    on_span: ClassVar[bool] = False
    agent: str

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {n.GEN_AI_AGENT_NAME: self.agent}

    def summary(self) -> str:
        return f"agent={self.agent}"


class AgentProcessingCompleted(TelemetryEvent):
    """The agent finished: the end of its span (duration = span, success = outcome)."""

    name: ClassVar[str] = n.EVENT_AGENT_COMPLETED
    on_span: ClassVar[bool] = False
    agent: str
    duration_s: float
    outcome: str

    @property
    def success(self) -> bool:
        return self.outcome != n.OUTCOME_ERROR

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {n.GEN_AI_AGENT_NAME: self.agent, n.AGENT_OUTCOME: self.outcome}

    def summary(self) -> str:
        return f"agent={self.agent}, outcome={self.outcome}, duration={self.duration_s * 1e3:.0f}ms"


class AgentErrorOccurred(TelemetryEvent):
    """A real failure: ``record_exception`` + status ERROR on the failing span."""

    name: ClassVar[str] = n.EVENT_AGENT_ERROR
    on_span: ClassVar[bool] = False
    audited: ClassVar[bool] = True
    audit_type: ClassVar[str] = n.AUDIT_AGENT_ERROR
    agent: str
    error_type: str
    message: str

    def audit_details(self, settings: TelemetrySettings) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "error_type": self.error_type,
            "error_message": safe_content(self.message, settings.capture_max_length),
        }

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {
            n.GEN_AI_AGENT_NAME: self.agent,
            n.ERROR_TYPE: self.error_type,
            n.ERROR_MESSAGE: safe_content(self.message, settings.capture_max_length),
        }

    def summary(self) -> str:
        return f"agent={self.agent}, error.type={self.error_type}"


class AgentSwitched(TelemetryEvent):
    """The conversation moved to another agent, on the handing-over span."""

    name: ClassVar[str] = n.EVENT_AGENT_SWITCHED
    audited: ClassVar[bool] = True
    audit_type: ClassVar[str] = n.AUDIT_AGENT_SWITCHED
    from_agent: str
    to_agent: str
    trigger: SwitchTrigger
    reason: str = ""
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)

    def audit_details(self, settings: TelemetrySettings) -> dict[str, Any]:
        return {
            "from_agent": self.from_agent,
            "to_agent": self.to_agent,
            "reason": scrub(self.reason)[:256],
            "confidence": self.confidence,
            "trigger": self.trigger,
        }

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {
            n.SWITCH_FROM: self.from_agent,
            n.SWITCH_TO: self.to_agent,
            n.SWITCH_TRIGGER: self.trigger,
            n.SWITCH_REASON: scrub(self.reason)[:256],
            n.SWITCH_CONFIDENCE: self.confidence,
        }

    def summary(self) -> str:
        return (
            f"{self.from_agent} → {self.to_agent} ({self.trigger}, "
            f"confidence={self.confidence:.2f}): {self.reason}"
        )


class ToolExecutionRequested(TelemetryEvent):
    """The model asked for a tool; its ``execute_tool`` span follows.

    ``arguments`` is checked to be a dict and kept as given, not copied: validating it
    item by item into a new dict would cost time on every event and a second copy of every
    call's arguments, and nothing here mutates it (they are serialised only with capture on).
    """

    name: ClassVar[str] = n.EVENT_TOOL_EXECUTION_REQUESTED
    tool: str
    call_id: str
    agent: str
    arguments: InstanceOf[dict[str, Any]] = Field(default_factory=dict)

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        # No gen_ai.agent.name: the event lands on the agent's own invoke_agent span, which
        # carries it; repeating it would only add to the SDK's attribute cleaning.
        attrs: Attributes = {n.GEN_AI_TOOL_NAME: self.tool, n.GEN_AI_TOOL_CALL_ID: self.call_id}
        if settings.capture_content:  # serialising arguments is work only capture needs
            encoded = json.dumps(self.arguments, sort_keys=True, default=str)
            attrs[n.GEN_AI_TOOL_CALL_ARGUMENTS] = safe_content(encoded, settings.capture_max_length)
        return attrs

    def summary(self) -> str:
        return f"tool={self.tool}, call_id={self.call_id}"


class ToolApprovalRequired(TelemetryEvent):
    """The tool is risky: a human must decide before it runs. ``arguments`` are what the
    human is asked to approve (kept as given, like :class:`ToolExecutionRequested`'s)."""

    name: ClassVar[str] = n.EVENT_TOOL_APPROVAL_REQUIRED
    audited: ClassVar[bool] = True
    audit_type: ClassVar[str] = n.AUDIT_TOOL_APPROVAL_REQUIRED
    tool: str
    call_id: str
    reason: str
    arguments: InstanceOf[dict[str, Any]] = Field(default_factory=dict)

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {
            n.GEN_AI_TOOL_NAME: self.tool,
            n.GEN_AI_TOOL_CALL_ID: self.call_id,
            n.APPROVAL_REASON: self.reason,
        }

    def audit_details(self, settings: TelemetrySettings) -> dict[str, Any]:
        return {
            "tool_name": self.tool,
            "call_id": self.call_id,
            "reason": self.reason,
            "arguments": _kept_arguments(self.arguments, settings),
        }

    def summary(self) -> str:
        return f"tool={self.tool}, reason={self.reason}"


class HITLApprovalRequested(TelemetryEvent):
    """The call now waits for the human, at most ``timeout_s``."""

    name: ClassVar[str] = n.EVENT_HITL_APPROVAL_REQUESTED
    audited: ClassVar[bool] = True
    audit_type: ClassVar[str] = n.AUDIT_HITL_APPROVAL_REQUESTED
    tool: str
    call_id: str
    timeout_s: float

    def audit_details(self, settings: TelemetrySettings) -> dict[str, Any]:
        return {"tool_name": self.tool, "call_id": self.call_id, "timeout_s": self.timeout_s}

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {
            n.GEN_AI_TOOL_NAME: self.tool,
            n.GEN_AI_TOOL_CALL_ID: self.call_id,
            n.APPROVAL_TIMEOUT_S: self.timeout_s,
        }

    def summary(self) -> str:
        return f"call_id={self.call_id}, timeout={self.timeout_s:g}s"


class HITLDecisionMade(TelemetryEvent):
    """The human answered (or the timeout answered REJECT for them).

    ``original_args`` are the arguments the human was shown; ``modified_args`` the ones an
    EDIT replaced them with (None for APPROVE and REJECT).
    """

    name: ClassVar[str] = n.EVENT_HITL_DECISION_MADE
    audited: ClassVar[bool] = True
    durable_before_ack: ClassVar[bool] = True
    audit_type: ClassVar[str] = n.AUDIT_HITL_DECISION_MADE
    tool: str
    call_id: str
    decision: Decision
    modified: bool = False
    wait_s: float = 0.0
    outcome: n.HITLOutcome = n.OUTCOME_DECIDED
    feedback: str | None = None
    original_args: InstanceOf[dict[str, Any]] = Field(default_factory=dict)
    modified_args: InstanceOf[dict[str, Any]] | None = None
    decided_by: str | None = None
    """The deciding person's id, from the trusted gateway's header (None: not known)."""

    def audit_details(self, settings: TelemetrySettings) -> dict[str, Any]:
        keep = settings.audit_arguments
        return {
            "call_id": self.call_id,
            "decided_by": self.decided_by,
            "tool_name": self.tool,
            "decision": self.decision,
            "original_args": _kept_arguments(self.original_args, settings),
            "modified_args": (
                None
                if self.modified_args is None
                else _kept_arguments(self.modified_args, settings)
            ),
            "feedback": (
                safe_content(self.feedback, settings.capture_max_length)
                if keep and self.feedback is not None
                else None
            ),
            "outcome": self.outcome,
            "wait_ms": round(self.wait_s * 1e3, 1),
        }

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        attrs: Attributes = {
            n.GEN_AI_TOOL_NAME: self.tool,
            n.GEN_AI_TOOL_CALL_ID: self.call_id,
            n.HITL_DECISION: self.decision,
            n.HITL_MODIFIED: self.modified,
            n.HITL_WAIT_MS: round(self.wait_s * 1e3, 1),
            n.HITL_OUTCOME: self.outcome,
        }
        attrs |= content_attributes(n.HITL_FEEDBACK, self.feedback, settings)
        if self.decided_by is not None:  # an id is short: its length would say too much
            attrs[f"{n.HITL_DECIDED_BY}_sha256"] = digest(self.decided_by)
            if settings.capture_content:
                attrs[n.HITL_DECIDED_BY] = safe_content(
                    self.decided_by, settings.capture_max_length
                )
        return attrs

    def summary(self) -> str:
        edited = ", modified" if self.modified else ""
        return f"decision={self.decision}{edited} ({self.outcome}) after {self.wait_s * 1e3:.0f}ms"


class ToolExecutionCompleted(TelemetryEvent):
    """The end of the ``execute_tool`` span: completed, failed, or rejected by the human."""

    name: ClassVar[str] = n.EVENT_TOOL_EXECUTION_COMPLETED
    on_span: ClassVar[bool] = False
    tool: str
    call_id: str
    outcome: ToolOutcome
    duration_s: float = 0.0

    def summary(self) -> str:
        return f"tool={self.tool}, outcome={self.outcome}"


def _kept_arguments(arguments: dict[str, Any], settings: TelemetrySettings) -> Any:
    """Tool arguments as the audit store keeps them: scrubbed and truncated, or None when
    the deployment keeps no arguments (``AGENT_RUNTIME_AUDIT_ARGUMENTS=false``)."""
    if not settings.audit_arguments:
        return None
    return safe_json(arguments, settings.capture_max_length)


CATALOG: tuple[type[TelemetryEvent], ...] = (
    AgentProcessingStarted,
    AgentProcessingCompleted,
    AgentErrorOccurred,
    AgentSwitched,
    ToolExecutionRequested,
    ToolApprovalRequired,
    HITLApprovalRequested,
    HITLDecisionMade,
    SessionCreated,
    MessageAdded,
    SessionUpdated,
    SessionDeleted,
    ToolExecutionCompleted,
    ContextTrimmed,
    FeedbackGiven,
)
"""Every event class: the seed's twelve, then the tool span's end, the context trim and a
person's feedback on an answer."""
