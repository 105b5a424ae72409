"""Helpers to read what the in-memory exporters hold, as the tests need it, and span
processors that check what the SDK tells them."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes


class SwitchableSampler(Sampler):
    """ALWAYS_ON, or ALWAYS_OFF while ``sample`` is False."""

    def __init__(self) -> None:
        self.sample = True

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        chosen = ALWAYS_ON if self.sample else ALWAYS_OFF
        return chosen.should_sample(parent_context, trace_id, name, kind, attributes, links)

    def get_description(self) -> str:
        return "SwitchableSampler"


class SpanLedger(SpanProcessor):
    """Pairs ``on_start`` and ``on_end`` per span id: which spans started and never ended,
    and which ended twice (or started twice).

    "Every span ended exactly once" is checked here, where the SDK reports it, not by
    counting exported spans: the SDK refuses a second ``end()`` before any processor sees
    it, so exported spans are unique whatever the code does, and an exporter never sees a
    span that was left open. Spans that started before :meth:`reset` are not tracked.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, str] = {}
        self._ended: set[int] = set()
        self._problems: list[str] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        span_id = span.get_span_context().span_id
        with self._lock:
            if span_id in self._open or span_id in self._ended:
                self._problems.append(f"{span.name}: started twice")
            self._open[span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        span_id = span.context.span_id if span.context is not None else 0
        with self._lock:
            if span_id in self._ended:
                self._problems.append(f"{span.name}: ended twice")
            self._open.pop(span_id, None)
            self._ended.add(span_id)

    def reset(self) -> None:
        with self._lock:
            self._open.clear()
            self._ended.clear()
            self._problems.clear()

    def open_spans(self) -> list[str]:
        """Names of the spans started since :meth:`reset` and not ended (yet)."""
        with self._lock:
            return sorted(self._open.values())

    def problems(self) -> list[str]:
        """Every span started and never ended, and every second start or end."""
        with self._lock:
            return [*self._problems, *(f"{name}: never ended" for name in self._open.values())]

    def assert_each_ended_once(self) -> None:
        """Fails unless every span started since :meth:`reset` ended exactly once."""
        problems = self.problems()
        assert not problems, "spans not ended exactly once: " + "; ".join(problems)


@dataclass
class HookRecorder(SpanProcessor):
    """Records every processor hook the SDK calls, in order, with the span's name: ``start``,
    ``ending`` (the SDK's ``_on_ending`` hook, overridden here as a processor may) and
    ``end``."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.calls.append(("start", span.name))

    def _on_ending(self, span: Span) -> None:
        self.calls.append(("ending", span.name))

    def on_end(self, span: ReadableSpan) -> None:
        self.calls.append(("end", span.name))

    def hooks_of(self, name: str) -> list[str]:
        """The hooks the span ``name`` got, in order."""
        return [hook for hook, span in self.calls if span == name]


@dataclass
class Telemetered:
    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    log_exporter: InMemoryLogRecordExporter
    sampler: SwitchableSampler
    ledger: SpanLedger
    providers: Any
    """The :class:`telemetry.Providers` that ``telemetry.configure`` returned."""
    _baseline: dict[tuple[str, tuple[tuple[str, Any], ...]], float] | None = None

    def reset(self) -> None:
        self.span_exporter.clear()
        self.log_exporter.clear()
        self.ledger.reset()
        self._baseline = self._points()

    def spans(self) -> list[ReadableSpan]:
        return list(self.span_exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        matches = [s for s in self.spans() if s.name == name]
        assert len(matches) == 1, (
            f"expected one span {name!r}, got {[s.name for s in self.spans()]}"
        )
        return matches[0]

    def wait_for_span(self, name: str, timeout_s: float = 10.0) -> ReadableSpan:
        """The server span ends after the last byte is sent, so a client that has read the
        whole stream may be ahead of it: poll the exporter with a deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            matches = [s for s in self.spans() if s.name == name]
            if matches or time.monotonic() > deadline:
                return self.span(name)
            time.sleep(0.002)

    def logs(self) -> list[ReadableLogRecord]:
        return list(self.log_exporter.get_finished_logs())

    def _points(self) -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
        points: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
        data = self.metric_reader.get_metrics_data()
        if data is None:
            return points
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                        value = getattr(point, "value", None)
                        if value is None:
                            value = getattr(point, "count", 0)
                        points[key] = float(value)
        return points

    def metric(self, name: str, attributes: dict[str, Any] | None = None) -> float:
        """Sum (counters) or count (histograms) of ``name`` since the test started, over
        the points whose attributes include ``attributes``."""
        baseline = self._baseline or {}
        total = 0.0
        for (metric_name, attrs), value in self._points().items():
            if metric_name != name:
                continue
            attr_map = dict(attrs)
            if all(attr_map.get(k) == v for k, v in (attributes or {}).items()):
                total += value - baseline.get((metric_name, attrs), 0.0)
        return total
