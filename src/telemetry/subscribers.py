"""In-process subscribers: the old event bus's extension point, kept.

A subscriber sees every emitted event after the span event, the metrics and the audit
record are done. Adding one (a notification service, a webhook, a cache) needs no change
to the emitters. ``on_event`` runs on the request path: it must return quickly and hand
slow work to its own queue. A failing subscriber is logged and skipped; the others run.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from telemetry.events import HITLApprovalRequested, HITLDecisionMade, TelemetryEvent

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventContext:
    """Where and when an event happened: its trace (the correlation id) and span."""

    trace_id: str
    span_id: str
    timestamp: float


class Subscriber(Protocol):
    """Receives every event emitted through the telemetry layer."""

    def on_event(self, event: TelemetryEvent, context: EventContext) -> None:
        """Called synchronously after the other sinks; must not block or raise."""


class SubscriberFanOut:
    """Calls each subscriber in turn, isolating their failures from each other."""

    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self._subscribers = list(subscribers)

    def add(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def notify(self, event: TelemetryEvent, context: EventContext) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber.on_event(event, context)
            except Exception:
                _log.exception("subscriber %r failed on %s", subscriber, event.name)


@dataclass(frozen=True, slots=True)
class Notification:
    """A message for a human: an approval is waiting, or was decided."""

    session_id: str | None
    trace_id: str
    text: str


class NotificationService:
    """Example subscriber: tells people when a tool call waits for them.

    It keeps the latest notifications in a bounded buffer (``maxlen``) instead of sending
    them anywhere; a real deployment would put them on a queue to chat or e-mail. Nothing
    in the emitters knows it exists.
    """

    def __init__(self, maxlen: int = 1000) -> None:
        self.notifications: deque[Notification] = deque(maxlen=maxlen)

    def on_event(self, event: TelemetryEvent, context: EventContext) -> None:
        match event:
            case HITLApprovalRequested():
                text = f"Approval needed: {event.tool} (call {event.call_id})"
            case HITLDecisionMade():
                text = f"{event.tool} call {event.call_id}: {event.decision} ({event.outcome})"
            case _:
                return
        self.notifications.append(Notification(event.session_id, context.trace_id, text))
