"""The seed's twelve domain events (plus the tool span's end), one small class each.

Each class carries its span-event name and turns itself into attributes; where each one
lands (span start/end, span event, metric, audit) is the table of DESIGN §3, and the class
flags of :class:`~telemetry.events.TelemetryEvent` say the same to the emit call:

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
==========================  =======  =======  ==================

``on_span`` no: the event is a span's start or end, not a span event. ``durable_before_ack``:
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
from telemetry.redaction import safe_content, scrub
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
    agent: str
    error_type: str
    message: str

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
    from_agent: str
    to_agent: str
    trigger: SwitchTrigger
    reason: str = ""
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)

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
    """The tool is risky: a human must decide before it runs."""

    name: ClassVar[str] = n.EVENT_TOOL_APPROVAL_REQUIRED
    audited: ClassVar[bool] = True
    tool: str
    call_id: str
    reason: str

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {
            n.GEN_AI_TOOL_NAME: self.tool,
            n.GEN_AI_TOOL_CALL_ID: self.call_id,
            n.APPROVAL_REASON: self.reason,
        }

    def summary(self) -> str:
        return f"tool={self.tool}, reason={self.reason}"


class HITLApprovalRequested(TelemetryEvent):
    """The call now waits for the human, at most ``timeout_s``."""

    name: ClassVar[str] = n.EVENT_HITL_APPROVAL_REQUESTED
    audited: ClassVar[bool] = True
    tool: str
    call_id: str
    timeout_s: float

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {
            n.GEN_AI_TOOL_NAME: self.tool,
            n.GEN_AI_TOOL_CALL_ID: self.call_id,
            n.APPROVAL_TIMEOUT_S: self.timeout_s,
        }

    def summary(self) -> str:
        return f"call_id={self.call_id}, timeout={self.timeout_s:g}s"


class HITLDecisionMade(TelemetryEvent):
    """The human answered (or the timeout answered REJECT for them)."""

    name: ClassVar[str] = n.EVENT_HITL_DECISION_MADE
    audited: ClassVar[bool] = True
    durable_before_ack: ClassVar[bool] = True
    tool: str
    call_id: str
    decision: Decision
    modified: bool = False
    wait_s: float = 0.0
    outcome: n.HITLOutcome = n.OUTCOME_DECIDED
    feedback: str | None = None

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        attrs: Attributes = {
            n.GEN_AI_TOOL_NAME: self.tool,
            n.GEN_AI_TOOL_CALL_ID: self.call_id,
            n.HITL_DECISION: self.decision,
            n.HITL_MODIFIED: self.modified,
            n.HITL_WAIT_MS: round(self.wait_s * 1e3, 1),
            n.HITL_OUTCOME: self.outcome,
        }
        return attrs | content_attributes(n.HITL_FEEDBACK, self.feedback, settings)

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


class SessionCreated(TelemetryEvent):
    """A new conversation."""

    name: ClassVar[str] = n.EVENT_SESSION_CREATED
    session_id: str

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {n.SESSION_ID: self.session_id}

    def summary(self) -> str:
        return f"session={self.session_id}"


class MessageAdded(TelemetryEvent):
    """A message joined the conversation; its text is exported only with capture on."""

    name: ClassVar[str] = n.EVENT_MESSAGE_ADDED
    session_id: str
    role: str
    content: str = ""

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        attrs: Attributes = {
            n.MESSAGE_ROLE: self.role,
            n.MESSAGE_CONTENT_LENGTH: len(self.content),
        }
        if settings.capture_content:
            attrs[n.MESSAGE_CONTENT] = safe_content(self.content, settings.capture_max_length)
        return attrs

    def summary(self) -> str:
        return f"role={self.role}, length={len(self.content)}"


class SessionUpdated(TelemetryEvent):
    """The session's state changed (its current agent)."""

    name: ClassVar[str] = n.EVENT_SESSION_UPDATED
    session_id: str
    agent: str | None = None

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {n.GEN_AI_AGENT_NAME: self.agent} if self.agent else {}

    def summary(self) -> str:
        return f"agent={self.agent}" if self.agent else ""


class SessionDeleted(TelemetryEvent):
    """The session was soft-deleted."""

    name: ClassVar[str] = n.EVENT_SESSION_DELETED
    audited: ClassVar[bool] = True
    durable_before_ack: ClassVar[bool] = True
    session_id: str

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {n.SESSION_ID: self.session_id}

    def summary(self) -> str:
        return f"session={self.session_id}"


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
)
"""Every event class: the seed's twelve, then the tool span's end."""
