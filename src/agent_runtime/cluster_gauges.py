"""Feeds the telemetry's cluster gauges from the store, every few seconds.

Sessions, sessions running, pending approvals (and the oldest one's age) and the audit
records not shipped yet are facts of the shared store: every
replica reads and reports the same value, and a restart does not reset it. The gauges'
callbacks run on the metric reader's thread and may do no I/O, so this loop reads the
store on the event loop and hands them plain numbers; a store that does not answer makes
the gauges report nothing (never a stale value), is logged once per outage, and fails
nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from agent_runtime.store import Store
from telemetry import ClusterGauges, suppress_client_spans

_log = logging.getLogger(__name__)

_VALID_FOR_REFRESHES = 3
"""Refresh periods a snapshot is reported for: a loop that stops leaves no stale value."""


class ClusterRefresher:
    """Reads :meth:`Store.cluster_counts` and updates ``gauges`` with them."""

    def __init__(
        self,
        store: Store,
        gauges: ClusterGauges,
        *,
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._gauges = gauges
        self._interval_s = interval_s
        self._clock = clock
        self._failing = False

    async def refresh(self) -> bool:
        """Read the counts once; False (the gauges then report nothing) when the store
        could not answer. Never raises: an outage is the store's health check's business,
        not the metrics'."""
        try:
            with suppress_client_spans():  # housekeeping: no trace of its own
                counts = await self._store.cluster_counts(now=self._clock())
        except Exception as exc:  # any failure: the next refresh tries again
            self._gauges.stale()
            if not self._failing:
                self._failing = True
                _log.warning(
                    "cluster counts could not be read from the store (%s: %s); the cluster "
                    "gauges report nothing until it answers",
                    type(exc).__name__,
                    exc,
                )
            return False
        self._gauges.update(
            sessions=counts.sessions,
            running=counts.running,
            pending=counts.pending_approvals,
            oldest_pending_age_s=counts.oldest_pending_age_s,
            audit_backlog=counts.audit_backlog,
            valid_for_s=_VALID_FOR_REFRESHES * self._interval_s,
        )
        if self._failing:
            self._failing = False
            _log.info("cluster counts are read from the store again")
        return True

    async def run_forever(self) -> None:
        """Refresh now, then every ``interval_s``, until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval_s)
