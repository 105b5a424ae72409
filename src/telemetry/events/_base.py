"""The shape every catalogue event shares."""

from __future__ import annotations

from typing import Any, ClassVar

from opentelemetry.util.types import AttributeValue
from pydantic import BaseModel, ConfigDict

from telemetry.redaction import digest, safe_content
from telemetry.settings import TelemetrySettings

Attributes = dict[str, AttributeValue]


class TelemetryEvent(BaseModel):
    """A domain event: typed, immutable, and able to say how it is exported.

    Class attributes say where the event lands (docs/architecture.md): ``name`` is the span-event
    name, ``on_span`` is False for events whose OTel form is a span's start or end rather
    than a span event, ``audited`` marks the events the audit trail must keep, and
    ``durable_before_ack`` marks the audited events whose record must be committed before
    the emit call returns.

    The catalogue's classes are final: the metrics recorder, the metrics collector and the
    subscriber fan-out dispatch on an event's exact class (one dictionary lookup, where
    each failing ``isinstance`` test against a pydantic model class goes through its
    metaclass's ``__instancecheck__``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]
    on_span: ClassVar[bool] = True
    audited: ClassVar[bool] = False
    audit_type: ClassVar[str] = ""
    """The audit record's ``event_type``: the seed's name (``agent_switched``,
    ``hitl_decision_made``…), which its users filter by. Only meaningful with ``audited``."""
    durable_before_ack: ClassVar[bool] = False
    """True for the events that acknowledge a human action (a HITL decision, a session
    delete): their audit record is committed before ``emit`` returns, so the answer the
    human gets never claims more than a crash would leave on disk. Other audited events
    are committed together when their request ends (a commit costs far more than queueing
    a record, whatever it holds).
    Only meaningful with ``audited``."""

    session_id: str | None = None

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        """Span-event and audit attributes; content only when capture is on."""
        return {}

    def summary(self) -> str:
        """One human line for the timeline view."""
        return ""

    def audit_details(self, settings: TelemetrySettings) -> dict[str, Any]:
        """The audit record's own fields under the seed's names (``from_agent``,
        ``tool_name``, ``original_args``…), beside the OTel attributes. Tool arguments are
        kept scrubbed and truncated, unless ``settings.audit_arguments`` is off."""
        return {}


def content_attributes(key: str, text: str | None, settings: TelemetrySettings) -> Attributes:
    """Length and digest always; the scrubbed, truncated text only with capture on."""
    if text is None:
        return {}
    attrs: Attributes = {f"{key}_length": len(text), f"{key}_sha256": digest(text)}
    if settings.capture_content:
        attrs[key] = safe_content(text, settings.capture_max_length)
    return attrs
