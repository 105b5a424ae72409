"""Histogram points handed to the SDK in batches: every collection sees every point recorded
before it, exactly as the SDK aggregates points recorded one by one; memory stays bounded;
nothing is lost to concurrency or to closing; exemplars keep their span when asked for."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from opentelemetry import _logs, context
from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import AlwaysOnExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import telemetry
from telemetry import names as n
from telemetry._histogram_batch import HOOK_INSTRUMENT, MAX_PENDING, HistogramBatch, batch_for

POINTS: list[tuple[float, dict[str, Any]]] = [
    (0.003, {"agent": "coder"}),
    (0.25, {"agent": "coder"}),
    (1.7, {"agent": "ask"}),
    (40.0, {"agent": "coder", "error.type": "TimeoutError"}),
    (0.25, {"agent": "ask"}),
]


class Batched(NamedTuple):
    reader: InMemoryMetricReader
    meter: Meter
    batch: HistogramBatch


@pytest.fixture
def batched() -> Iterator[Batched]:
    """An SDK meter with one in-memory reader, and a batch for it (closed after the test)."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    batch = HistogramBatch(meter)
    yield Batched(reader, meter, batch)
    batch.close()


def _histogram_points(reader: InMemoryMetricReader, name: str) -> dict[Any, HistogramDataPoint]:
    data = reader.get_metrics_data()
    points: dict[Any, HistogramDataPoint] = {}
    if data is None:
        return points
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        assert isinstance(point, HistogramDataPoint)
                        points[frozenset((point.attributes or {}).items())] = point
    return points


def _names(reader: InMemoryMetricReader) -> set[str]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }


def _aggregate(point: HistogramDataPoint) -> tuple[Any, ...]:
    return (
        point.count,
        point.sum,
        point.min,
        point.max,
        tuple(point.bucket_counts),
        tuple(point.explicit_bounds),
    )


def test_a_collection_sees_the_queued_points_as_the_sdk_aggregates_them() -> None:
    direct_reader, batched_reader = InMemoryMetricReader(), InMemoryMetricReader()
    direct = MeterProvider(metric_readers=[direct_reader]).get_meter("t")
    meter = MeterProvider(metric_readers=[batched_reader]).get_meter("t")
    batch = HistogramBatch(meter)
    try:
        advice = (0.01, 0.5, 5.0)
        plain = direct.create_histogram("d", explicit_bucket_boundaries_advisory=advice)
        queued = batch.wrap(meter.create_histogram("d", explicit_bucket_boundaries_advisory=advice))
        for value, attributes in POINTS:
            plain.record(value, attributes)
            queued.record(value, attributes)
        assert len(batch.pending) == len(POINTS)  # nothing reached the SDK yet

        got = _histogram_points(batched_reader, "d")
        want = _histogram_points(direct_reader, "d")
        assert set(got) == set(want) and len(got) == 3
        for key, point in want.items():
            assert _aggregate(got[key]) == _aggregate(point)
        assert not batch.pending
        # The hook that hands the queue over observes nothing, so it is never exported.
        assert HOOK_INSTRUMENT not in _names(batched_reader)
    finally:
        batch.close()


def test_every_reader_of_the_provider_sees_the_points() -> None:
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[first, second]).get_meter("t")
    batch = HistogramBatch(meter)
    try:
        histogram = batch.wrap(meter.create_histogram("h"))
        histogram.record(2.0, {"a": "b"})
        histogram.record(3.0, {"a": "b"})
        # The first collection drains the queue into both readers' storages.
        assert _histogram_points(first, "h")[frozenset({("a", "b")})].sum == 5.0
        assert _histogram_points(second, "h")[frozenset({("a", "b")})].sum == 5.0
    finally:
        batch.close()


def test_the_queue_is_bounded_and_the_points_over_it_reach_the_sdk(batched: Batched) -> None:
    reader, meter, batch = batched
    histogram = batch.wrap(meter.create_histogram("h"))
    for _ in range(MAX_PENDING - 1):
        histogram.record(1, {})
    assert len(batch.pending) == MAX_PENDING - 1
    histogram.record(1, {})  # reaching the bound hands the queue over on this thread
    assert not batch.pending
    histogram.record(1, {})
    assert _histogram_points(reader, "h")[frozenset()].count == MAX_PENDING + 1


def test_concurrent_recording_and_collection_lose_and_repeat_nothing(batched: Batched) -> None:
    reader, meter, batch = batched
    threads, per_thread = 4, 5_000
    histogram = batch.wrap(meter.create_histogram("h"))
    start = threading.Barrier(threads + 1)

    def record() -> None:
        start.wait()
        for _ in range(per_thread):
            histogram.record(1, {"k": "v"})

    workers = [threading.Thread(target=record) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    collections = 0
    while any(worker.is_alive() for worker in workers):
        reader.get_metrics_data()
        collections += 1
    for worker in workers:
        worker.join()
    point = _histogram_points(reader, "h")[frozenset({("k", "v")})]
    assert point.count == threads * per_thread and point.sum == threads * per_thread
    assert collections > 1


def test_closing_hands_the_queue_over_and_detaches_the_batch(batched: Batched) -> None:
    reader, meter, live = batched
    closed = HistogramBatch(meter)
    histogram = meter.create_histogram("h")
    closed.wrap(histogram).record(1, {})
    closed.close()
    assert not closed.pending  # handed over at close, before any collection
    # A point queued after close is no longer drained by collections; a second batch on the
    # same meter (a restarted app) still is, through the meter's one hook.
    closed.wrap(histogram).record(10, {})
    live.wrap(histogram).record(100, {})
    assert _histogram_points(reader, "h")[frozenset()].sum == 101
    assert len(closed.pending) == 1 and not live.pending


def test_points_go_at_once_without_an_sdk_provider_or_with_exemplars() -> None:
    meter = MeterProvider().get_meter("t")
    assert batch_for(meter, sdk=True, exemplars=True) is None
    assert batch_for(NoOpMeterProvider().get_meter("t"), sdk=False, exemplars=False) is None
    batch = batch_for(meter, sdk=True, exemplars=False)
    assert isinstance(batch, HistogramBatch)
    batch.close()


def test_with_exemplars_requested_a_duration_point_keeps_its_span(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exemplar needs the span current when the point is recorded: batching would record
    it later, outside that span."""
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_on")
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(
        metric_readers=[reader], exemplar_filter=AlwaysOnExemplarFilter()
    )
    tracer_provider = TracerProvider()
    providers = telemetry.Providers(
        tracer_provider, meter_provider, _logs.NoOpLoggerProvider(), False
    )
    hub = telemetry.Telemetry(audit_path=tmp_path / "audit.db", providers=providers)
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("outer") as outer:
            run = hub.spans.agent("coder", conversation_id="s-1", parent=context.get_current())
            run.stop("completed")
        points = _histogram_points(reader, n.METRIC_INVOKE_AGENT_DURATION)
        (point,) = points.values()
        assert point.exemplars
        assert {exemplar.trace_id for exemplar in point.exemplars} == {
            outer.get_span_context().trace_id
        }
    finally:
        hub.close()
