"""Subscribers (docs/architecture.md): the old bus's extension point; failures isolated."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanContext

import telemetry
from telemetry.subscribers import EventContext, SubscriberFanOut

CTX = telemetry.EventContext(trace_id="a" * 32, span_id="b" * 16, timestamp=1.0)


class Seen:
    def __init__(self) -> None:
        self.names: list[str] = []

    def on_event(self, event: telemetry.TelemetryEvent, context: telemetry.EventContext) -> None:
        self.names.append(event.name)


class Fails:
    def on_event(self, event: telemetry.TelemetryEvent, context: telemetry.EventContext) -> None:
        raise ValueError("nope")


def test_fan_out_calls_everyone_in_order_despite_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, last = Seen(), Seen()
    fan_out = SubscriberFanOut([first, Fails()])
    fan_out.add(last)
    fan_out.notify(telemetry.SessionCreated(session_id="s"), CTX)
    assert first.names == last.names == ["session.created"]
    assert "failed" in caplog.text


class Contexts:
    event_types = frozenset({telemetry.HITLDecisionMade})

    def __init__(self) -> None:
        self.contexts: list[telemetry.EventContext] = []

    def on_event(self, event: telemetry.TelemetryEvent, context: telemetry.EventContext) -> None:
        self.contexts.append(context)


def test_publish_hands_the_span_context_and_time_to_the_subscribers_that_want_it() -> None:
    wanting = Contexts()
    span_context = SpanContext(0xA1, 0xB2, is_remote=False)
    fan_out = SubscriberFanOut([wanting])
    fan_out.publish(telemetry.SessionCreated(session_id="s"), span_context, 1.0)  # not wanted
    decision = telemetry.HITLDecisionMade(tool="t", call_id="c", decision="APPROVE")
    fan_out.publish(decision, span_context, 2.0)
    (context,) = wanting.contexts
    assert context.span_context is span_context
    assert (context.trace_id, context.span_id) == (f"{0xA1:032x}", f"{0xB2:016x}")
    assert context.timestamp == 2.0


class OnlyDecisions:
    event_types = frozenset({telemetry.HITLDecisionMade})

    def __init__(self) -> None:
        self.names: list[str] = []

    def on_event(self, event: telemetry.TelemetryEvent, context: telemetry.EventContext) -> None:
        self.names.append(event.name)


def test_a_subscriber_declaring_event_types_sees_only_those() -> None:
    everything, decisions = Seen(), OnlyDecisions()
    fan_out = SubscriberFanOut([decisions, everything])
    decision = telemetry.HITLDecisionMade(tool="t", call_id="c", decision="APPROVE")
    for event in (telemetry.SessionCreated(session_id="s"), decision, decision):
        fan_out.notify(event, CTX)
    assert decisions.names == ["hitl.decision_made"] * 2
    assert everything.names == ["session.created"] + ["hitl.decision_made"] * 2


class Declares:
    def __init__(self, event_types: object) -> None:
        self.event_types = event_types
        self.names: list[str] = []

    def on_event(self, event: telemetry.TelemetryEvent, context: telemetry.EventContext) -> None:
        self.names.append(event.name)


def test_event_types_none_or_unusable_means_every_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    everything, malformed = Declares(None), Declares(5)
    SubscriberFanOut([everything, malformed]).notify(telemetry.SessionCreated(session_id="s"), CTX)
    assert everything.names == malformed.names == ["session.created"]
    assert "unusable event_types" in caplog.text


def test_routes_are_worked_out_again_when_a_subscriber_is_added() -> None:
    first, later = Seen(), OnlyDecisions()
    fan_out = SubscriberFanOut([first])
    decision = telemetry.HITLDecisionMade(tool="t", call_id="c", decision="REJECT")
    fan_out.notify(decision, CTX)
    fan_out.add(later)
    fan_out.notify(decision, CTX)
    assert first.names == ["hitl.decision_made"] * 2
    assert later.names == ["hitl.decision_made"]


def test_event_context_formats_ids_from_the_span_context() -> None:
    span_context = SpanContext(0xABC, 0x12, is_remote=False)
    context = EventContext.from_span_context(span_context, 2.5)
    assert context.trace_id == f"{0xABC:032x}"
    assert context.span_id == f"{0x12:016x}"
    assert context.span_context is span_context
    assert context.timestamp == 2.5
    assert context == EventContext(f"{0xABC:032x}", f"{0x12:016x}", 2.5)
    assert hash(context) == hash(EventContext(f"{0xABC:032x}", f"{0x12:016x}", 2.5))
    assert context != EventContext(f"{0xABC:032x}", f"{0x12:016x}", 3.0)


def test_event_context_is_read_only() -> None:
    with pytest.raises(AttributeError):
        CTX.trace_id = "c" * 32  # type: ignore[misc]
    with pytest.raises(AttributeError):
        CTX.timestamp = 2.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        CTX.extra = 1  # type: ignore[attr-defined]


def test_event_context_from_hex_ids_keeps_them_as_given() -> None:
    assert CTX.trace_id == "a" * 32
    assert CTX.span_id == "b" * 16
    assert CTX.span_context.trace_id == int("a" * 32, 16)
    with pytest.raises(ValueError):
        EventContext("not hex", "b" * 16, 0.0)


def test_notification_service_reports_waiting_and_decided_approvals(
    hub: telemetry.Telemetry,
) -> None:
    with trace.get_tracer("tests").start_as_current_span("s") as span:
        hub.emit(
            telemetry.HITLApprovalRequested(
                tool="write_file", call_id="c1", timeout_s=300, session_id="s1"
            )
        )
        hub.emit(telemetry.SessionCreated(session_id="s1"))  # not a notification
        hub.emit(
            telemetry.HITLDecisionMade(
                tool="write_file", call_id="c1", decision="APPROVE", session_id="s1"
            )
        )
    waiting, decided = hub.notifications.notifications
    trace_id = trace.format_trace_id(span.get_span_context().trace_id)
    assert waiting.session_id == decided.session_id == "s1"
    assert waiting.trace_id == decided.trace_id == trace_id
    assert "write_file" in waiting.text and "c1" in waiting.text
    assert "APPROVE" in decided.text


def test_notifications_are_bounded() -> None:
    service = telemetry.NotificationService(maxlen=2)
    for number in range(5):
        service.on_event(
            telemetry.HITLApprovalRequested(tool="t", call_id=f"c{number}", timeout_s=1), CTX
        )
    assert [n.text.endswith("(call c4)") for n in service.notifications] == [False, True]


def test_a_subscriber_added_later_sees_later_events(hub: telemetry.Telemetry) -> None:
    seen = Seen()
    hub.emit(telemetry.SessionCreated(session_id="s1"))
    hub.subscribe(seen)
    hub.emit(telemetry.SessionDeleted(session_id="s1"))
    assert seen.names == ["session.deleted"]
