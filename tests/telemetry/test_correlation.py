"""Correlation (docs/architecture.md): the trace id is the correlation id, on responses and log
lines."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import telemetry
from tests.support.otel import Telemetered

TRACERESPONSE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def test_header_names() -> None:
    assert telemetry.CORRELATION_HEADER == "X-Correlation-ID"
    assert telemetry.TRACERESPONSE_HEADER == "traceresponse"


def test_traceresponse_is_w3c_shaped(telemetered: Telemetered) -> None:
    with trace.get_tracer("tests").start_as_current_span("s") as span:
        context = span.get_span_context()
        value = telemetry.traceresponse(context)
    assert TRACERESPONSE.match(value), value
    version, trace_id, span_id, flags = value.split("-")
    assert trace_id == trace.format_trace_id(context.trace_id)
    assert span_id == trace.format_span_id(context.span_id)
    assert flags == f"{int(context.trace_flags):02x}"
    assert int(flags, 16) & 0x01  # sampled (0x02, W3C level 2's "random", may be set too)
    assert version == "00"


def test_traceresponse_of_an_unsampled_context_has_flags_00() -> None:
    context = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(0))
    assert telemetry.traceresponse(context) == f"00-{0xABC:032x}-{0xDEF:016x}-00"


def test_correlation_id_is_the_trace_id(telemetered: Telemetered) -> None:
    assert telemetry.correlation_id() is None
    with trace.get_tracer("tests").start_as_current_span("s") as span:
        expected = trace.format_trace_id(span.get_span_context().trace_id)
        assert telemetry.correlation_id() == expected
        assert telemetry.correlation_id(span) == expected
    assert re.fullmatch(r"[0-9a-f]{32}", expected)


def test_correlation_id_of_an_unsampled_span_is_still_its_trace_id(
    unsampled: Telemetered,
) -> None:
    with trace.get_tracer("tests").start_as_current_span("s") as span:
        assert not span.is_recording()
        assert telemetry.correlation_id() == trace.format_trace_id(span.get_span_context().trace_id)


CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _untraced(headers: dict[str, str]) -> SpanContext:
    context = telemetry.untraced_context(headers)
    assert context is not None
    span = trace.get_current_span(context)
    assert not span.is_recording()
    return span.get_span_context()


def test_an_untraced_request_gets_a_fresh_random_trace() -> None:
    """Telemetry off: no server span, so the request gets ids of its own (not sampled)."""
    first, second = _untraced({}), _untraced({})
    assert first.is_valid and second.is_valid
    assert first.trace_id != second.trace_id
    assert not first.trace_flags.sampled


def test_an_untraced_request_continues_a_valid_traceparent() -> None:
    continued = _untraced({"traceparent": CALLER})
    assert trace.format_trace_id(continued.trace_id) == "0af7651916cd43dd8448eb211c80319c"
    assert trace.format_span_id(continued.span_id) != "b7ad6b7169203331"  # its own span id


@pytest.mark.parametrize(
    "traceparent",
    ["garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01", "00-xyz-abc-01"],
)
def test_an_untraced_request_with_a_malformed_traceparent_starts_fresh(traceparent: str) -> None:
    fresh = _untraced({"traceparent": traceparent})
    assert fresh.is_valid
    assert trace.format_trace_id(fresh.trace_id) != "0af7651916cd43dd8448eb211c80319c"


def test_an_untraced_request_under_the_callers_span_gets_a_span_id_of_its_own() -> None:
    """With the SDK disabled the server instrumentation's no-op tracer makes the caller's
    (remote) span current: the request continues its trace, unsampled, with its own id."""
    caller = SpanContext(0xCAFE, 0xBEEF, is_remote=True, trace_flags=TraceFlags(1))
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(caller)))
    try:
        own = _untraced({})
    finally:
        otel_context.detach(token)
    assert own.trace_id == 0xCAFE
    assert own.span_id != 0xBEEF
    assert not own.is_remote and not own.trace_flags.sampled


def test_a_traced_request_keeps_its_server_span(telemetered: Telemetered) -> None:
    with trace.get_tracer("tests").start_as_current_span("server"):
        assert telemetry.untraced_context({"traceparent": CALLER}) is None


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[_Keep]:
    handler = _Keep()
    handler.addFilter(telemetry.TraceContextLogFilter())
    logger = logging.getLogger("tests.telemetry.correlation")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def test_log_filter_adds_trace_and_span_ids_inside_a_span(
    telemetered: Telemetered, kept: _Keep
) -> None:
    logger = logging.getLogger("tests.telemetry.correlation")
    with trace.get_tracer("tests").start_as_current_span("s") as span:
        logger.info("inside")
    logger.info("outside")
    inside, outside = kept.records
    context = span.get_span_context()
    assert inside.trace_id == trace.format_trace_id(context.trace_id)  # type: ignore[attr-defined]
    assert inside.span_id == trace.format_span_id(context.span_id)  # type: ignore[attr-defined]
    assert outside.trace_id == "-"  # type: ignore[attr-defined]
    assert outside.span_id == "-"  # type: ignore[attr-defined]


def test_log_filter_uses_a_remote_parent_context(kept: _Keep) -> None:
    remote = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(remote)):
        logging.getLogger("tests.telemetry.correlation").warning("remote")
    (record,) = kept.records
    assert record.trace_id == f"{0x1234:032x}"  # type: ignore[attr-defined]


def test_install_log_correlation_is_idempotent() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        telemetry.install_log_correlation()
        telemetry.install_log_correlation()
        added = [h for h in root.handlers if h not in handlers]
        assert len(added) == 1
        assert any(isinstance(f, telemetry.TraceContextLogFilter) for f in added[0].filters)
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
