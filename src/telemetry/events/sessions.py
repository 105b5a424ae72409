"""The conversation's events: a session created, updated, deleted, a message added, and a
model call's input trimmed to the context budget.

They change with the conversation's model (the transcript, the budget), not with the agents'
or the tools' events, so they live apart from :mod:`telemetry.events.catalog`, which lists
them in the catalogue with the others.
"""

from __future__ import annotations

from typing import ClassVar

from telemetry import names as n
from telemetry.events._base import Attributes, TelemetryEvent
from telemetry.redaction import safe_content
from telemetry.settings import TelemetrySettings


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
    audit_type: ClassVar[str] = n.AUDIT_SESSION_DELETED
    durable_before_ack: ClassVar[bool] = True
    session_id: str

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {n.SESSION_ID: self.session_id}

    def summary(self) -> str:
        return f"session={self.session_id}"


class ContextTrimmed(TelemetryEvent):
    """A model call's input was cut to the context budget: the oldest turns left out.

    On the ``chat`` span of the call; counted (messages left out, by agent) whatever the
    sampler decides. Token figures are the service's estimate, calibrated by what the
    provider reported for the previous call.
    """

    name: ClassVar[str] = n.EVENT_CONTEXT_TRIMMED
    agent: str
    dropped_messages: int
    dropped_tokens: int
    sent_tokens: int
    budget_tokens: int
    over_budget: bool = False

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        return {
            n.GEN_AI_AGENT_NAME: self.agent,
            n.CONTEXT_DROPPED_MESSAGES: self.dropped_messages,
            n.CONTEXT_DROPPED_TOKENS: self.dropped_tokens,
            n.CONTEXT_SENT_TOKENS: self.sent_tokens,
            n.CONTEXT_BUDGET_TOKENS: self.budget_tokens,
            n.CONTEXT_OVER_BUDGET: self.over_budget,
        }

    def summary(self) -> str:
        over = ", still over budget" if self.over_budget else ""
        return (
            f"agent={self.agent}: {self.dropped_messages} messages (~{self.dropped_tokens} "
            f"tokens) left out, ~{self.sent_tokens}/{self.budget_tokens} tokens sent{over}"
        )
