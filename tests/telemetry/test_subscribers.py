"""Subscribers (DESIGN §4): the old bus's extension point; failures isolated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace

import telemetry
from telemetry.subscribers import SubscriberFanOut
from tests.support.otel import Telemetered

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


@pytest.fixture
def hub(telemetered: Telemetered, tmp_path: Path) -> Iterator[telemetry.Telemetry]:
    hub = telemetry.Telemetry(settings=telemetry.TelemetrySettings(), audit_path=tmp_path / "a.db")
    yield hub
    hub.close()


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
