"""Helpers to read what the in-memory exporters hold, as the tests need it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
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


@dataclass
class Telemetered:
    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    log_exporter: InMemoryLogRecordExporter
    sampler: SwitchableSampler
    _baseline: dict[tuple[str, tuple[tuple[str, Any], ...]], float] | None = None

    def reset(self) -> None:
        self.span_exporter.clear()
        self.log_exporter.clear()
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
