"""The check behind "every span ended exactly once" (tests/support/otel.py ``SpanLedger``) can
fail: it reports a span left open and a second end, which counting exported spans cannot
(the SDK refuses a second ``end()`` and never exports an open span)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider

import telemetry
from telemetry import names as n
from tests.support.otel import SpanLedger, Telemetered


def test_a_span_left_open_fails_the_check(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    run = request.agent("coder")
    request.tool("write_file", "c1", run=run)
    assert telemetered.ledger.open_spans() == [
        n.SPAN_AGENT_REQUEST,
        "execute_tool write_file",
        "invoke_agent coder",
    ]
    with pytest.raises(AssertionError, match="execute_tool write_file: never ended"):
        telemetered.ledger.assert_each_ended_once()
    request.finish(n.OUTCOME_DISCONNECTED)
    telemetered.ledger.assert_each_ended_once()


def test_a_run_stopped_outside_the_request_still_leaves_the_request_open(
    hub: telemetry.Telemetry, telemetered: Telemetered
) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    request.agent("coder").stop()
    with pytest.raises(AssertionError, match=f"{n.SPAN_AGENT_REQUEST}: never ended"):
        telemetered.ledger.assert_each_ended_once()
    request.finish(n.OUTCOME_COMPLETED)
    telemetered.ledger.assert_each_ended_once()


def test_a_second_end_fails_the_check() -> None:
    """The SDK never reports a second end (it refuses it first), so a finished span is
    handed to the ledger twice, as a span implementation that ended twice would."""
    ledger = SpanLedger()
    provider = TracerProvider()
    provider.add_span_processor(ledger)
    span = provider.get_tracer("tests").start_span("twice")
    span.end()
    ledger.assert_each_ended_once()
    ledger.on_end(span)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="twice: ended twice"):
        ledger.assert_each_ended_once()


def test_reset_forgets_what_came_before(telemetered: Telemetered) -> None:
    ledger = SpanLedger()
    provider = TracerProvider()
    provider.add_span_processor(ledger)
    earlier = provider.get_tracer("tests").start_span("earlier")
    ledger.reset()
    ledger.assert_each_ended_once()
    earlier.end()  # started before the reset: not tracked
    ledger.assert_each_ended_once()
