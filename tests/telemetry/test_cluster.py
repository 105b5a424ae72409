"""The cluster gauges (src/telemetry/cluster.py): they report the latest numbers the service
handed them, and nothing before the first, after a failed read or once a snapshot expired;
and they are registered per :class:`telemetry.Providers`, once."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import telemetry
from telemetry import names as n

GAUGES = (n.METRIC_SESSIONS_ACTIVE, n.METRIC_SESSIONS_RUNNING, n.METRIC_APPROVALS_PENDING)


def gauge_values(reader: InMemoryMetricReader) -> dict[str, list[float]]:
    """Every point of the three gauges in one collection, by name (a name without points
    is left out)."""
    values: dict[str, list[float]] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name in GAUGES and metric.data.data_points:
                    values[metric.name] = [p.value for p in metric.data.data_points]  # type: ignore[union-attr]
    return values


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _attached(clock: Clock | None = None) -> tuple[telemetry.ClusterGauges, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    gauges = telemetry.ClusterGauges(clock=clock) if clock else telemetry.ClusterGauges()
    gauges.attach(MeterProvider(metric_readers=[reader]).get_meter(n.SCOPE))
    return gauges, reader


def test_nothing_is_observed_before_the_first_update() -> None:
    gauges, reader = _attached()
    assert gauge_values(reader) == {}
    assert gauges.snapshot() is None


def test_the_gauges_report_the_latest_update() -> None:
    gauges, reader = _attached()
    gauges.update(sessions=7, running=2, pending=1)
    assert gauge_values(reader) == {
        n.METRIC_SESSIONS_ACTIVE: [7],
        n.METRIC_SESSIONS_RUNNING: [2],
        n.METRIC_APPROVALS_PENDING: [1],
    }
    gauges.update(sessions=8, running=0, pending=3)
    assert gauge_values(reader) == {
        n.METRIC_SESSIONS_ACTIVE: [8],
        n.METRIC_SESSIONS_RUNNING: [0],
        n.METRIC_APPROVALS_PENDING: [3],
    }


def test_a_stale_snapshot_is_not_observed() -> None:
    gauges, reader = _attached()
    gauges.update(sessions=7, running=2, pending=1)
    gauges.stale()
    assert gauge_values(reader) == {}
    gauges.update(sessions=5, running=1, pending=0)
    assert gauge_values(reader)[n.METRIC_SESSIONS_ACTIVE] == [5]


def test_an_expired_snapshot_is_not_observed() -> None:
    """A feeder that stopped (its loop died) leaves no value that looks current."""
    clock = Clock()
    gauges, reader = _attached(clock)
    gauges.update(sessions=7, running=2, pending=1, valid_for_s=15)
    clock.now += 15
    assert gauge_values(reader)[n.METRIC_SESSIONS_ACTIVE] == [7]
    clock.now += 0.001
    assert gauge_values(reader) == {}


async def test_an_application_exposes_its_providers_gauges_and_closing_it_stops_them() -> None:
    reader = InMemoryMetricReader()
    providers = telemetry.build_providers(
        telemetry.TelemetrySettings(traces_exporters=(), metrics_exporters=(), logs_exporters=()),
        metric_readers=[reader],
    )
    try:
        hub = telemetry.Telemetry(settings=telemetry.TelemetrySettings(), providers=providers)
        assert hub.cluster is providers.cluster
        hub.cluster.update(sessions=4, running=1, pending=2)
        assert gauge_values(reader)[n.METRIC_APPROVALS_PENDING] == [2]
        await hub.aclose()
        assert gauge_values(reader) == {}
    finally:
        telemetry.shutdown(providers)


def test_the_global_providers_register_no_gauges() -> None:
    """A meter keeps the callbacks registered first: the gauges belong to the Providers
    that :func:`telemetry.configure` returned, and global_providers() (a new object every
    call) has none to register twice."""
    assert telemetry.global_providers().cluster is None
    hub = telemetry.Telemetry(settings=telemetry.TelemetrySettings())
    hub.cluster.update(sessions=1, running=0, pending=0)  # detached: fine, observed by nobody


def _points(reader: InMemoryMetricReader, name: str) -> list[float]:
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    return [p.value for p in metric.data.data_points]  # type: ignore[union-attr]
    return []


def test_the_oldest_approval_keeps_ageing_between_reads_and_the_backlog_is_reported() -> None:
    clock = Clock()
    gauges, reader = _attached(clock)
    gauges.update(sessions=1, running=1, pending=2, oldest_pending_age_s=40.0, audit_backlog=7)
    clock.now += 5  # the next read of the store is still to come
    assert _points(reader, n.METRIC_APPROVALS_OLDEST_PENDING_AGE) == [45.0]
    assert _points(reader, n.METRIC_AUDIT_OUTBOX_BACKLOG) == [7]
    gauges.update(sessions=1, running=0, pending=0, oldest_pending_age_s=0.0, audit_backlog=0)
    clock.now += 5
    assert _points(reader, n.METRIC_APPROVALS_OLDEST_PENDING_AGE) == [0.0]  # none waits
    assert _points(reader, n.METRIC_AUDIT_OUTBOX_BACKLOG) == [0]
