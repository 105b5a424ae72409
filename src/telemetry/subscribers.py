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
from typing import ClassVar, Protocol

from opentelemetry.trace import SpanContext

from telemetry.events import HITLApprovalRequested, HITLDecisionMade, TelemetryEvent

_log = logging.getLogger(__name__)


class EventContext:
    """Where and when an event happened: its span (the trace id is the correlation id).

    Read-only. ``span_context`` is the OTel context of the span the event belongs to;
    ``trace_id`` (32 hex) and ``span_id`` (16 hex) are formatted from it on first read and
    kept. The emit call hands every subscriber a context, and most reach no subscriber that
    reads the hex ids, so formatting them eagerly would be work nobody uses. ``timestamp``
    is the emit time, seconds since the epoch.
    """

    __slots__ = ("_span_context", "_span_id", "_timestamp", "_trace_id")

    _span_context: SpanContext
    _trace_id: str | None
    _span_id: str | None
    _timestamp: float

    def __init__(self, trace_id: str, span_id: str, timestamp: float) -> None:
        """A context from hex ids, as a replay or a test has them (ValueError if not hex)."""
        self._span_context = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True)
        self._trace_id = trace_id
        self._span_id = span_id
        self._timestamp = timestamp

    @classmethod
    def from_span_context(cls, span_context: SpanContext, timestamp: float) -> EventContext:
        """The context of an event that belongs to ``span_context``'s span (the emit call's
        way: nothing is formatted until someone reads it)."""
        context = cls.__new__(cls)
        context._span_context = span_context
        context._trace_id = context._span_id = None
        context._timestamp = timestamp
        return context

    @property
    def span_context(self) -> SpanContext:
        return self._span_context

    @property
    def trace_id(self) -> str:
        if self._trace_id is None:
            self._trace_id = format(self._span_context.trace_id, "032x")
        return self._trace_id

    @property
    def span_id(self) -> str:
        if self._span_id is None:
            self._span_id = format(self._span_context.span_id, "016x")
        return self._span_id

    @property
    def timestamp(self) -> float:
        return self._timestamp

    def _key(self) -> tuple[int, int, float]:
        return (self._span_context.trace_id, self._span_context.span_id, self._timestamp)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventContext):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"EventContext(trace_id={self.trace_id!r}, span_id={self.span_id!r}, "
            f"timestamp={self._timestamp!r})"
        )


class Subscriber(Protocol):
    """Receives every event emitted through the telemetry layer.

    A subscriber that cares about a few event classes only may say so in an attribute
    ``event_types`` (a set of exact catalogue classes; absent or None: every event); the
    fan-out then never calls it for the others, which on the request path is cheaper than
    being called to ignore them.
    """

    def on_event(self, event: TelemetryEvent, context: EventContext) -> None:
        """Called synchronously after the other sinks; must not block or raise."""


class SubscriberFanOut:
    """Calls each subscriber in turn, isolating their failures from each other.

    Which subscribers an event class reaches is worked out on its first event and kept
    (until the next ``add``), so an event costs one lookup plus the calls it needs.
    """

    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self._subscribers = list(subscribers)
        self._routes = _Routes(self._subscribers)

    def add(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)
        self._routes = _Routes(self._subscribers)

    def publish(self, event: TelemetryEvent, span_context: SpanContext, timestamp: float) -> None:
        """The emit call's way: the context is built only if a subscriber wants the event."""
        route = self._routes[type(event)]
        if route:
            self._deliver(route, event, EventContext.from_span_context(span_context, timestamp))

    def notify(self, event: TelemetryEvent, context: EventContext) -> None:
        self._deliver(self._routes[type(event)], event, context)

    def _deliver(
        self, route: tuple[Subscriber, ...], event: TelemetryEvent, context: EventContext
    ) -> None:
        for subscriber in route:
            try:
                subscriber.on_event(event, context)
            except Exception:
                _log.exception("subscriber %r failed on %s", subscriber, event.name)


class _Routes(dict[type[TelemetryEvent], tuple[Subscriber, ...]]):
    """The subscribers each event class reaches, worked out on its first event."""

    def __init__(self, subscribers: list[Subscriber]) -> None:
        super().__init__()
        self._subscribers = subscribers

    def __missing__(self, kind: type[TelemetryEvent]) -> tuple[Subscriber, ...]:
        route = tuple(subscriber for subscriber in self._subscribers if _wants(subscriber, kind))
        self[kind] = route
        return route


def _wants(subscriber: Subscriber, kind: type[TelemetryEvent]) -> bool:
    try:
        wanted = getattr(subscriber, "event_types", None)
        return wanted is None or kind in wanted
    except Exception:  # a malformed ``event_types`` must not fail the emit call
        _log.exception("subscriber %r: unusable event_types; sending it every event", subscriber)
        return True


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

    event_types: ClassVar[frozenset[type[TelemetryEvent]]] = frozenset(
        {HITLApprovalRequested, HITLDecisionMade}
    )

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
