"""The deployment-wide facts as observable gauges: sessions, sessions running, approvals
pending and the oldest one's age, audit records not shipped yet.

These are facts of the shared store, not of one process: every replica reports the same
value, a restart does not reset it, and dashboards take their ``max`` over replicas (never
their ``sum``). Counting them from this process's events would make each replica report
what it happened to see since it started.

OpenTelemetry calls an observable instrument's callback on the metric reader's thread, at
every collection: a callback must return at once and do no I/O. So the service reads the
store on its own schedule and hands this object plain numbers (:meth:`ClusterGauges.update`);
the callbacks only read the latest snapshot. Before the first update, after
:meth:`ClusterGauges.stale` (a failed refresh) and once a snapshot is older than the
``valid_for_s`` it came with, they observe nothing: no point is better than a stale one that
looks current.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from telemetry import names as n

__all__ = ["ClusterGauges", "ClusterSnapshot"]

DEFAULT_VALID_FOR_S = 30.0
"""How long a snapshot is observed when its feeder says nothing (several refresh periods)."""


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """The store's counts at one moment, and until when they may be reported."""

    sessions: int
    running: int
    pending: int
    expires: float
    """The monotonic time after which the snapshot is observed no more."""
    oldest_pending_age_s: float = 0.0
    """The oldest pending approval's age when the counts were read."""
    audit_backlog: int = 0
    read_at: float = 0.0
    """The monotonic time the counts were read: the oldest approval keeps ageing after."""


class ClusterGauges:
    """The latest cluster counts, observed by five gauges once :meth:`attach` registered
    them on a meter.

    One per :class:`telemetry.Providers` (one meter provider): a meter keeps the first
    callbacks registered under a name, so a second object registering the same gauges on the
    same meter would never be observed. :class:`telemetry.Telemetry` attaches its providers'
    object and exposes it as ``cluster``.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock``: monotonic seconds, for the snapshots' expiry."""
        self._clock = clock
        # Replaced whole (one reference assignment), read by the reader's thread without a
        # lock: a callback never sees half an update.
        self._snapshot: ClusterSnapshot | None = None

    def attach(self, meter: Meter) -> None:
        """Register the gauges on ``meter``. Again on the same meter changes nothing: a
        meter keeps the instruments (and callbacks) registered first under a name."""
        gauges: tuple[tuple[str, Callable[[ClusterSnapshot], float], str, str], ...] = (
            (n.METRIC_SESSIONS_ACTIVE, lambda s: s.sessions, "{session}", "Sessions not deleted"),
            (
                n.METRIC_SESSIONS_RUNNING,
                lambda s: s.running,
                "{session}",
                "Sessions with a run in progress or waiting for a human (run lease alive)",
            ),
            (
                n.METRIC_APPROVALS_PENDING,
                lambda s: s.pending,
                "{approval}",
                "Approvals waiting for a human decision",
            ),
            (
                n.METRIC_APPROVALS_OLDEST_PENDING_AGE,
                self._oldest_age,
                "s",
                "How long the oldest pending approval has waited (0 when none waits)",
            ),
            (
                n.METRIC_AUDIT_OUTBOX_BACKLOG,
                lambda s: s.audit_backlog,
                "{record}",
                "Audit records the Collector has not acknowledged yet",
            ),
        )
        for name, pick, unit, what in gauges:
            meter.create_observable_gauge(
                name,
                callbacks=[self._callback(pick)],
                unit=unit,
                description=f"{what}, in the whole deployment (read from the store)",
            )

    def update(
        self,
        *,
        sessions: int,
        running: int,
        pending: int,
        oldest_pending_age_s: float = 0.0,
        audit_backlog: int = 0,
        valid_for_s: float = DEFAULT_VALID_FOR_S,
    ) -> None:
        """The counts just read from the store, reported for at most ``valid_for_s``
        (make it a few refresh periods: a feeder that stops leaves no stale value behind)."""
        now = self._clock()
        self._snapshot = ClusterSnapshot(
            sessions,
            running,
            pending,
            expires=now + valid_for_s,
            oldest_pending_age_s=oldest_pending_age_s,
            audit_backlog=audit_backlog,
            read_at=now,
        )

    def stale(self) -> None:
        """The counts could not be read: observe nothing until the next :meth:`update`."""
        self._snapshot = None

    def snapshot(self) -> ClusterSnapshot | None:
        """The snapshot the gauges report now, or None when they report nothing."""
        snapshot = self._snapshot
        if snapshot is None or self._clock() > snapshot.expires:
            return None
        return snapshot

    def _oldest_age(self, snapshot: ClusterSnapshot) -> float:
        """The oldest pending approval's age now: it kept waiting since the counts were read."""
        if not snapshot.pending:
            return 0.0
        return snapshot.oldest_pending_age_s + max(0.0, self._clock() - snapshot.read_at)

    def _callback(
        self, pick: Callable[[ClusterSnapshot], float]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            snapshot = self.snapshot()
            return [] if snapshot is None else [Observation(pick(snapshot))]

        return observe
