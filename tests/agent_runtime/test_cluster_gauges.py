"""The cluster gauges fed from the store (src/agent_runtime/cluster_gauges.py): they report
the store's counts, two replicas on one store report the same, a restart does not reset
them, and a store that does not answer fails nothing (the gauges then report nothing).

Each "replica" is a runtime with providers of its own (its own meter provider and reader,
its own ``service.instance.id``), as separate processes would have, on one SQLite file.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from scripts.processes import wait_until

import telemetry
from agent_runtime.api.app import create_app
from agent_runtime.cluster_gauges import ClusterRefresher
from agent_runtime.errors import StoreUnavailable
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.store.cluster import ClusterCounts
from telemetry import names as n
from tests.agent_runtime.test_store import approval
from tests.support.server import serve
from tests.telemetry.test_cluster import gauge_values

NO_EXPORTERS = telemetry.TelemetrySettings(
    traces_exporters=(), metrics_exporters=(), logs_exporters=()
)


@dataclass
class Replica:
    runtime: Runtime
    reader: InMemoryMetricReader

    def gauges(self) -> dict[str, list[float]]:
        return gauge_values(self.reader)


def _providers(reader: InMemoryMetricReader) -> telemetry.Providers:
    return telemetry.build_providers(NO_EXPORTERS, metric_readers=[reader])


@asynccontextmanager
async def replica(data_dir: Path) -> AsyncIterator[Replica]:
    reader = InMemoryMetricReader()
    providers = _providers(reader)
    runtime = await Runtime.start(
        Settings(data_dir=data_dir),
        telemetry_settings=telemetry.TelemetrySettings(),
        telemetry_providers=providers,
    )
    try:
        yield Replica(runtime, reader)
    finally:
        await runtime.close()
        telemetry.shutdown(providers)


async def _populate(runtime: Runtime) -> Any:
    """Three sessions, one deleted; one running; two approvals pending, one decided."""
    for session_id in ("s1", "s2", "s3"):
        await runtime.sessions.create(session_id)
    await runtime.sessions.delete("s3")
    lease = await runtime.sessions.begin_run("s1")
    await runtime.store.insert_approval(approval("call_1", "s2"))
    await runtime.store.insert_approval(approval("call_2", "s2"))
    await runtime.store.insert_approval(approval("call_3", "s1"))
    assert await runtime.store.record_decision(
        "call_2",
        decision="REJECT",
        arguments=None,
        feedback=None,
        outcome="rejected",
        decided_at=200.0,
    )
    return lease


EXPECTED = {
    n.METRIC_SESSIONS_ACTIVE: [2],
    n.METRIC_SESSIONS_RUNNING: [1],
    n.METRIC_APPROVALS_PENDING: [2],
}


async def test_the_gauges_report_the_stores_counts(tmp_path: Path) -> None:
    async with replica(tmp_path) as one:
        assert one.gauges() == {}  # nothing read yet: nothing reported
        lease = await _populate(one.runtime)
        assert await one.runtime.cluster.refresh()
        assert one.gauges() == EXPECTED
        await lease.release()
        assert await one.runtime.cluster.refresh()
        assert one.gauges()[n.METRIC_SESSIONS_RUNNING] == [0]


async def test_two_replicas_on_one_store_report_the_same_values(tmp_path: Path) -> None:
    """Sessions created through one replica only: the other reports them too (counted from
    its own events it would report none)."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(replica(tmp_path))
        b = await stack.enter_async_context(replica(tmp_path))
        lease = await _populate(a.runtime)
        assert await a.runtime.cluster.refresh()
        assert await b.runtime.cluster.refresh()
        assert a.gauges() == b.gauges() == EXPECTED
        await lease.release()


async def test_a_restart_does_not_reset_the_gauges(tmp_path: Path) -> None:
    async with replica(tmp_path) as before:
        lease = await _populate(before.runtime)
        await lease.release()
        assert await before.runtime.cluster.refresh()
        reported = before.gauges()
    async with replica(tmp_path) as after:  # a new process on the same store
        assert await after.runtime.cluster.refresh()
        assert after.gauges() == reported
        assert after.gauges()[n.METRIC_SESSIONS_ACTIVE] == [2]


class FlakyStore:
    """A store whose cluster query fails while ``down``."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.down = False

    async def cluster_counts(self, *, now: float) -> ClusterCounts:
        if self.down:
            raise StoreUnavailable()
        counts: ClusterCounts = await self.store.cluster_counts(now=now)
        return counts


async def test_a_failed_refresh_raises_nothing_reports_nothing_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with replica(tmp_path) as one:
        await one.runtime.sessions.create("s1")
        store = FlakyStore(one.runtime.store)
        refresher = ClusterRefresher(
            store,  # type: ignore[arg-type]
            one.runtime.telemetry.cluster,
            interval_s=5,
        )
        assert await refresher.refresh()
        assert one.gauges()[n.METRIC_SESSIONS_ACTIVE] == [1]
        store.down = True
        with caplog.at_level(logging.INFO, logger="agent_runtime.cluster_gauges"):
            assert not await refresher.refresh()
            assert one.gauges() == {}  # no stale value
            assert not await refresher.refresh()
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1, caplog.text  # once per outage
            store.down = False
            assert await refresher.refresh()
            assert "read from the store again" in caplog.text
        assert one.gauges()[n.METRIC_SESSIONS_ACTIVE] == [1]


def test_the_service_refreshes_the_gauges_in_the_background(tmp_path: Path) -> None:
    """The lifespan starts the refresh loop: a session created through the API appears in
    the gauge within a few refresh periods."""
    reader = InMemoryMetricReader()
    providers = _providers(reader)
    settings = Settings(data_dir=tmp_path, cluster_refresh_s=0.05)

    def active() -> list[float] | None:
        return gauge_values(reader).get(n.METRIC_SESSIONS_ACTIVE)

    try:
        with serve(create_app(settings, telemetry_providers=providers)) as running:
            assert wait_until(lambda: active() == [0], timeout=10, what="first refresh")
            created = httpx.post(f"{running.url}/v1/sessions", json={}, timeout=10)
            assert created.status_code == 201, created.text
            assert wait_until(lambda: active() == [1], timeout=10, what="the new session")
    finally:
        telemetry.shutdown(providers)
