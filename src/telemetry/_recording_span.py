"""The service's own spans, kept as plain Python while they run and handed to the SDK's span
processors as one ``ReadableSpan`` when they end.

Why not ``Tracer.start_span`` for them. The SDK's span is general: it validates every
attribute value on every set (``BoundedAttributes``), wraps each event's attributes the
same way, takes a lock per call, and copies itself into a ``ReadableSpan`` at the end.
A span with one event costs ~19 µs by hand that way, ~8 µs here; an agent run (8 spans, 9
events) went from ~1.27 to ~0.96 ms of telemetry CPU (``bench/per_run.py``, the two
versions alternately). The spans started here carry attributes that the telemetry layer
builds itself, typed as ``AttributeValue`` (mypy checks every one), so they are kept as
given and the work is done once, at the end.

Everything else is the SDK's own, read from the tracer: the sampler's decision (and any
attributes or trace state it adds), the id generator, the trace flags, the resource and
instrumentation scope, and the span processors (``on_start`` when the span starts,
``on_end`` with the finished span), so the batch processor, the OTLP exporter and a
test's in-memory exporter receive exactly what the SDK would have given them.

:func:`span_starter` uses this path only where it is exact: an SDK tracer whose span
limits set no attribute length (count limits are applied as the SDK applies them) and
whose internal metrics are off. Any other tracer (the API's no-op or proxy tracer, a
length limit) starts its own spans.

Like every span object of :mod:`telemetry._runs`, a span here belongs to one event loop:
its methods take no lock (the SDK's take one per call).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from types import TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util import BoundedList
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
from opentelemetry.util import types

_log = logging.getLogger(__name__)

SpanStarter = Callable[..., Span]
"""``start(name, *, context, kind, attributes, links=())``: a started span, not current."""


class RecordingSpan(Span):
    """A recording span of the service's own: attributes in a dict, events in a list."""

    __slots__ = (
        "_attributes",
        "_context",
        "_end_time",
        "_events",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_pipeline",
        "_start_time",
        "_status",
    )

    def __init__(
        self,
        pipeline: _SdkPipeline,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, types.AttributeValue],
        links: Sequence[Link],
    ) -> None:
        self._pipeline = pipeline
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._links = links
        self._events: list[Event] | BoundedList[Event] = []
        self._status = Status(StatusCode.UNSET)
        self._start_time = time_ns()
        self._end_time: int | None = None

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if self._end_time is None:
            self._attributes.update(attributes)
        else:
            _log.warning("Setting attribute on ended span.")

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self._end_time is None:
            self._attributes[key] = value
        else:
            _log.warning("Setting attribute on ended span.")

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is not None:
            _log.warning("Tried calling add_event on an ended span.")
            return
        limit = self._pipeline.limits.max_event_attributes
        if attributes and limit is not None and len(attributes) > limit:
            attributes = BoundedAttributes(limit, attributes, immutable=True)
        events = self._events
        if isinstance(events, list) and len(events) == self._pipeline.limits.max_events:
            # past the limit the SDK keeps the newest and counts the rest: from here, so do we
            events = self._events = BoundedList.from_seq(len(events), events)
        events.append(Event(name, attributes, timestamp or time_ns()))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self._end_time is None and context.is_valid:
            self._links = [*self._links, Link(context, attributes)]

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """The SDK's rules: OK is final, UNSET is ignored."""
        if self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """The SDK's ``exception`` event (type, message, stack trace, escaped); ``attributes``
        override them (the telemetry layer passes scrubbed, truncated ones)."""
        cls = type(exception)
        module = cls.__module__
        event: dict[str, types.AttributeValue] = {
            "exception.type": f"{module}.{cls.__qualname__}"
            if module and module != "builtins"
            else cls.__qualname__,
            "exception.escaped": str(escaped),
        }
        if attributes is None or "exception.message" not in attributes:
            event["exception.message"] = str(exception)
        if attributes is None or "exception.stacktrace" not in attributes:
            event["exception.stacktrace"] = "".join(traceback.format_exception(exception))
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            _log.warning("Calling end() on an ended span.")
            return
        self._end_time = end_time if end_time is not None else time_ns()
        self._pipeline.processor.on_end(self._readable())

    def _readable(self) -> ReadableSpan:
        pipeline = self._pipeline
        limits = pipeline.limits
        attributes: types.Attributes = self._attributes
        if (
            limits.max_span_attributes is not None
            and len(self._attributes) > limits.max_span_attributes
        ):
            attributes = BoundedAttributes(limits.max_span_attributes, self._attributes)
        links: Sequence[Link] = self._links
        if limits.max_links is not None and len(links) > limits.max_links:
            links = BoundedList.from_seq(limits.max_links, links)
        return ReadableSpan(
            name=self._name,
            context=self._context,
            parent=self._parent,
            resource=pipeline.tracer.resource,  # read now: the SDK may replace it
            attributes=attributes,
            events=self._events,
            links=links,
            kind=self._kind,
            status=self._status,
            start_time=self._start_time,
            end_time=self._end_time,
            instrumentation_info=pipeline.instrumentation_info,
            instrumentation_scope=pipeline.instrumentation_scope,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self.is_recording():
            self.record_exception(exc_val, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        super().__exit__(exc_type, exc_val, exc_tb)

    def __repr__(self) -> str:
        return f'RecordingSpan(name="{self._name}", context={self._context})'


class _SdkPipeline:
    """What a span started here takes from its SDK tracer."""

    __slots__ = (
        "ids",
        "instrumentation_info",
        "instrumentation_scope",
        "limits",
        "processor",
        "sampler",
        "tracer",
    )

    def __init__(self, tracer: sdk_trace.Tracer, limits: SpanLimits) -> None:
        self.tracer = tracer
        self.sampler = tracer.sampler
        self.ids = tracer.id_generator
        self.processor = tracer.span_processor
        self.instrumentation_info = tracer.instrumentation_info
        self.instrumentation_scope = tracer._instrumentation_scope
        self.limits = limits

    def start(
        self,
        name: str,
        *,
        context: Context | None,
        kind: SpanKind,
        attributes: dict[str, types.AttributeValue],
        links: Sequence[Link] = (),
    ) -> Span:
        """The SDK's ``start_span`` decisions, in its order; a :class:`RecordingSpan` when
        the sampler records."""
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        if not self.tracer._is_enabled():
            return NonRecordingSpan(parent or trace.INVALID_SPAN_CONTEXT)
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
        else:
            parent = None
            trace_id = self.ids.generate_trace_id()
            random_id = self.ids.is_trace_id_random()
        result = self.sampler.should_sample(context, trace_id, name, kind, attributes, links)
        decision = result.decision
        flags = TraceFlags.SAMPLED if decision is Decision.RECORD_AND_SAMPLE else TraceFlags.DEFAULT
        if random_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        span_context = SpanContext(
            trace_id,
            self.ids.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(flags),
            trace_state=result.trace_state,
        )
        if decision is Decision.DROP:
            return NonRecordingSpan(span_context)
        span = RecordingSpan(
            self,
            name,
            span_context,
            parent,
            kind,
            dict(result.attributes),
            [link for link in links if link.context.is_valid],
        )
        self.processor.on_start(span, parent_context=context)  # type: ignore[arg-type]
        return span


def _exact_for(tracer: trace.Tracer) -> _SdkPipeline | None:
    """The pipeline to start ``tracer``'s spans here, or None where that would not give
    exactly the SDK's spans (see the module docstring)."""
    if not isinstance(tracer, sdk_trace.Tracer):
        return None
    limits: Any = getattr(tracer, "_span_limits", None)
    metrics: Any = getattr(tracer, "_tracer_metrics", None)
    if (
        not isinstance(limits, SpanLimits)
        or limits.max_span_attribute_length is not None
        or limits.max_attribute_length is not None
        or type(metrics).__name__ != "NoOpTracerMetrics"
        or not hasattr(tracer, "_instrumentation_scope")
        or not hasattr(tracer, "_is_enabled")
    ):
        return None
    return _SdkPipeline(tracer, limits)


def span_starter(tracer: trace.Tracer) -> SpanStarter:
    """How to start the service's spans on ``tracer``: recorded here when that is exact,
    else by ``tracer.start_span`` (which takes the same arguments)."""
    pipeline = _exact_for(tracer)
    return pipeline.start if pipeline is not None else tracer.start_span
