"""The event catalogue: typed domain events and their OTel form."""

from telemetry.events._base import Attributes, TelemetryEvent
from telemetry.events.catalog import (
    CATALOG,
    AgentErrorOccurred,
    AgentProcessingCompleted,
    AgentProcessingStarted,
    AgentSwitched,
    Decision,
    HITLApprovalRequested,
    HITLDecisionMade,
    SwitchTrigger,
    ToolApprovalRequired,
    ToolExecutionCompleted,
    ToolExecutionRequested,
    ToolOutcome,
)
from telemetry.events.feedback import FeedbackGiven
from telemetry.events.sessions import (
    ContextTrimmed,
    MessageAdded,
    SessionCreated,
    SessionDeleted,
    SessionUpdated,
)

__all__ = [
    "CATALOG",
    "AgentErrorOccurred",
    "AgentProcessingCompleted",
    "AgentProcessingStarted",
    "AgentSwitched",
    "Attributes",
    "ContextTrimmed",
    "Decision",
    "FeedbackGiven",
    "HITLApprovalRequested",
    "HITLDecisionMade",
    "MessageAdded",
    "SessionCreated",
    "SessionDeleted",
    "SessionUpdated",
    "SwitchTrigger",
    "TelemetryEvent",
    "ToolApprovalRequired",
    "ToolExecutionCompleted",
    "ToolExecutionRequested",
    "ToolOutcome",
]
