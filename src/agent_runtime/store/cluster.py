"""What replicas sharing one store ask of it beyond the single-process contract: whether a
run's lease is alive (a replica is still there to resume it), and the cluster-wide counts
every replica reports alike (sessions, approvals waiting for a human and for how long, audit
records not shipped yet).

Both backends implement these with the same SQL (only the placeholder differs), as mixins of
their store classes, so each store module keeps only its own connection handling.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["DECISION_CHANNEL", "ClusterCounts", "ClusterQueries"]

DECISION_CHANNEL = "agent_runtime_decisions"
"""The PostgreSQL NOTIFY channel a decision is announced on (payload: the call id only)."""

_LEASE_ALIVE = (
    "SELECT COUNT(*) AS n FROM sessions WHERE session_id = {p} AND deleted_at IS NULL "
    "AND run_owner IS NOT NULL AND run_until >= {p}"
)
_COUNTS = (
    "SELECT (SELECT COUNT(*) FROM sessions WHERE deleted_at IS NULL) AS sessions, "
    "(SELECT COUNT(*) FROM sessions WHERE deleted_at IS NULL AND run_owner IS NOT NULL "
    "AND run_until >= {p}) AS running, "
    "(SELECT COUNT(*) FROM approvals WHERE status = 'pending') AS pending, "
    "(SELECT MIN(requested_at) FROM approvals WHERE status = 'pending') AS oldest_requested, "
    "(SELECT COUNT(*) FROM audit_records WHERE exported_at IS NULL) AS unshipped"
)


@dataclass(frozen=True, slots=True)
class ClusterCounts:
    """Facts of the whole deployment, read from the store: every replica reports the same,
    and a restart does not reset them."""

    sessions: int
    """Sessions not deleted."""
    running: int
    """Sessions with a live run lease: a run in progress, or a stream waiting for a human."""
    pending_approvals: int
    oldest_pending_age_s: float = 0.0
    """How long the oldest pending approval has waited (0 when none waits)."""
    audit_backlog: int = 0
    """Audit records the Collector has not acknowledged yet (the outbox's backlog)."""


class ClusterQueries:
    """The cluster queries over a store's ``_fetch`` (``placeholder``: ``?`` or ``%s``)."""

    placeholder: ClassVar[str] = "?"

    async def _fetch(self, sql: str, params: Iterable[Any]) -> list[Any]:
        raise NotImplementedError  # the store's own

    async def run_lease_alive(self, session_id: str, *, now: float) -> bool:
        """Whether some process holds ``session_id``'s run lease at ``now``: a run of it is
        in progress, or its stream waits for a human (and will resume the run itself)."""
        rows = await self._fetch(_LEASE_ALIVE.format(p=self.placeholder), (session_id, now))
        return int(rows[0]["n"]) > 0

    async def cluster_counts(self, *, now: float) -> ClusterCounts:
        """Sessions, sessions running, pending approvals: the same on every replica."""
        rows = await self._fetch(_COUNTS.format(p=self.placeholder), (now,))
        row = rows[0]
        oldest = row["oldest_requested"]
        return ClusterCounts(
            int(row["sessions"]),
            int(row["running"]),
            int(row["pending"]),
            oldest_pending_age_s=max(0.0, now - float(oldest)) if oldest is not None else 0.0,
            audit_backlog=int(row["unshipped"]),
        )
