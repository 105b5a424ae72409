"""The service's own spans (:mod:`telemetry._recording_span`) export exactly what the SDK's
spans would: the same scenario runs on both, on real SDK pipelines, and the exported spans
are compared field by field; the SDK's sampler, processors and limits still rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from telemetry._recording_span import RecordingSpan, SpanStarter, span_starter

Scenario = Callable[[SpanStarter], None]


def _pipeline(**provider_args: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(**provider_args)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _sdk_starter(tracer: trace.Tracer) -> SpanStarter:
    return tracer.start_span


def _shape(span: ReadableSpan, ids: dict[int, str]) -> dict[str, Any]:
    """Everything an exporter reads, with span ids replaced by the span names."""
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind,
        "parent": ids.get(span.parent.span_id) if span.parent else None,
        "remote_parent": span.parent.is_remote if span.parent else None,
        "flags": int(span.context.trace_flags),
        "attributes": dict(span.attributes or {}),
        "events": [(e.name, dict(e.attributes or {})) for e in span.events],
        "links": [ids.get(link.context.span_id, "outside") for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "resource": span.resource.attributes,
        "scope": span.instrumentation_scope,
        "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
        "timed": span.start_time is not None
        and span.end_time is not None
        and span.start_time <= span.end_time,
    }


def _ours(tracer: trace.Tracer) -> SpanStarter:
    start = span_starter(tracer)

    def checked(*args: Any, **kwargs: Any) -> Span:
        span = start(*args, **kwargs)
        assert isinstance(span, RecordingSpan)
        return span

    return checked


def _both(scenario: Scenario, **provider_args: Any) -> tuple[list[dict[str, Any]], ...]:
    """Run ``scenario`` on the SDK's spans and on ours; the exported shapes of each."""
    shapes = []
    for make in (_sdk_starter, _ours):
        provider, exporter = _pipeline(**provider_args)
        scenario(make(provider.get_tracer("agent_runtime", "1.0")))
        spans = exporter.get_finished_spans()
        ids = {s.context.span_id: s.name for s in spans if s.context is not None}
        shapes.append([_shape(s, ids) for s in spans])
    return tuple(shapes)


def _agent_run(start: SpanStarter) -> None:
    root = start("agent.request", context=None, kind=SpanKind.INTERNAL, attributes={"a": "b"})
    agent = start(
        "invoke_agent coder",
        context=trace.set_span_in_context(root),
        kind=SpanKind.INTERNAL,
        attributes={"gen_ai.agent.name": "coder", "n": 3, "ok": True, "x": 0.5},
    )
    agent.add_event("agent.switched", {"from": "orchestrator", "tags": ("a", "b")})
    agent.set_attribute("agent_runtime.agent.outcome", "completed")
    agent.set_attributes({"gen_ai.usage.input_tokens": 12, "reasons": ("stop",)})
    chat = start(
        "chat gpt",
        context=trace.set_span_in_context(agent),
        kind=SpanKind.CLIENT,
        attributes={"gen_ai.request.model": "gpt"},
        links=[Link(root.get_span_context())],
    )
    chat.update_name("chat gpt-4o")
    try:
        raise ValueError("key sk-123 leaked")
    except ValueError as exc:
        chat.record_exception(exc, attributes={"exception.message": "scrubbed"})
    chat.set_status(Status(StatusCode.ERROR, "ValueError"))
    chat.set_status(StatusCode.OK)  # ERROR may still become OK, as in the SDK
    chat.set_status(StatusCode.ERROR, "too late")  # OK is final
    chat.end()
    agent.end()
    root.end()


def test_an_agent_run_exports_what_the_sdk_spans_export() -> None:
    sdk, ours = _both(_agent_run)
    assert [s["name"] for s in sdk] == ["chat gpt-4o", "invoke_agent coder", "agent.request"]
    assert ours == sdk


def test_the_exception_event_matches_the_sdk_and_keeps_given_attributes() -> None:
    sdk, ours = _both(_agent_run)
    events = dict(ours[0]["events"])
    assert events["exception"]["exception.type"] == "ValueError"
    assert events["exception"]["exception.message"] == "scrubbed"
    assert "ValueError" in str(events["exception"]["exception.stacktrace"])
    assert ours[0]["events"] == sdk[0]["events"]


def test_an_exception_through_use_span_is_recorded_as_by_the_sdk() -> None:
    def scenario(start: SpanStarter) -> None:
        span = start("hitl.decision", context=None, kind=SpanKind.INTERNAL, attributes={})
        with pytest.raises(KeyError), trace.use_span(span, end_on_exit=True):
            raise KeyError("call")

    sdk, ours = _both(scenario)
    assert ours[0]["status"][0] is StatusCode.ERROR
    assert [name for name, _ in ours[0]["events"]] == ["exception"]
    # the stack trace names this file's lines, so compare everything else
    for shapes in (sdk, ours):
        shapes[0]["events"][0][1].pop("exception.stacktrace")
    assert ours == sdk


def test_a_remote_parent_and_its_trace_id_are_kept() -> None:
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )

    def scenario(start: SpanStarter) -> None:
        parent = trace.set_span_in_context(NonRecordingSpan(remote))
        start("agent.request", context=parent, kind=SpanKind.INTERNAL, attributes={}).end()

    sdk, ours = _both(scenario)
    assert ours == sdk
    assert ours[0]["remote_parent"] is True


@pytest.mark.parametrize("sampler", [ALWAYS_OFF, ParentBased(ALWAYS_OFF)])
def test_the_sdk_sampler_decides(sampler: Sampler) -> None:
    provider, exporter = _pipeline(sampler=sampler)
    span = span_starter(provider.get_tracer("t"))(
        "agent.request", context=None, kind=SpanKind.INTERNAL, attributes={}
    )
    assert not span.is_recording()
    assert span.get_span_context().is_valid
    assert not span.get_span_context().trace_flags.sampled
    span.end()
    assert exporter.get_finished_spans() == ()


def test_an_unsampled_parent_leaves_its_children_unrecorded() -> None:
    provider, exporter = _pipeline()
    unsampled = SpanContext(7, 9, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    span = span_starter(provider.get_tracer("t"))(
        "invoke_agent coder",
        context=trace.set_span_in_context(NonRecordingSpan(unsampled)),
        kind=SpanKind.INTERNAL,
        attributes={},
    )
    assert not span.is_recording()
    assert span.get_span_context().trace_id == 7
    span.end()
    assert exporter.get_finished_spans() == ()


def test_processors_see_the_start_and_one_end() -> None:
    seen: list[str] = []

    class Watching(SpanProcessor):
        def on_start(self, span: Any, parent_context: Context | None = None) -> None:
            span.set_attribute("watched", True)
            seen.append(f"start {type(span).__name__}")

        def on_end(self, span: ReadableSpan) -> None:
            seen.append(f"end {span.name} watched={span.attributes['watched']}")

    provider, _ = _pipeline()
    provider.add_span_processor(Watching())
    span = span_starter(provider.get_tracer("t"))(
        "agent.request", context=None, kind=SpanKind.INTERNAL, attributes={}
    )
    span.end()
    span.end()  # warned and ignored, as in the SDK
    span.set_attribute("late", 1)
    span.add_event("late")
    assert seen == ["start RecordingSpan", "end agent.request watched=True"]


def test_count_limits_keep_the_newest_events_and_count_the_rest() -> None:
    def scenario(start: SpanStarter) -> None:
        span = start(
            "s", context=None, kind=SpanKind.INTERNAL, attributes={f"k{i}": i for i in range(4)}
        )
        for i in range(5):
            span.add_event(f"e{i}", {f"a{j}": j for j in range(3)})
        span.end()

    limits = SpanLimits(max_events=2, max_span_attributes=3, max_event_attributes=2)
    sdk, ours = _both(scenario, span_limits=limits)
    assert [name for name, _ in ours[0]["events"]] == ["e3", "e4"]
    assert ours[0]["dropped"] == (1, 3, 0)
    assert ours == sdk


def test_a_length_limit_or_a_non_sdk_tracer_starts_the_tracers_own_spans() -> None:
    provider, exporter = _pipeline(span_limits=SpanLimits(max_span_attribute_length=4))
    span = span_starter(provider.get_tracer("t"))(
        "s", context=None, kind=SpanKind.INTERNAL, attributes={"k": "truncated"}
    )
    assert not isinstance(span, RecordingSpan)
    span.end()
    assert exporter.get_finished_spans()[0].attributes == {"k": "trun"}

    noop = span_starter(trace.NoOpTracer())(
        "s", context=None, kind=SpanKind.INTERNAL, attributes={}
    )
    assert not noop.is_recording() and not noop.get_span_context().is_valid
