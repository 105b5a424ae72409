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
    MessageAdded,
    SessionCreated,
    SessionDeleted,
    SessionUpdated,
    SwitchTrigger,
    ToolApprovalRequired,
    ToolExecutionCompleted,
    ToolExecutionRequested,
    ToolOutcome,
)

__all__ = [
    "CATALOG",
    "AgentErrorOccurred",
    "AgentProcessingCompleted",
    "AgentProcessingStarted",
    "AgentSwitched",
    "Attributes",
    "Decision",
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
