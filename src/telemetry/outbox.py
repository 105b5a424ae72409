"""The audit outbox: what the audit trail needs from the store that keeps it.

The audit records live in the service's own store, beside the sessions and approvals, so a
decision, its approval row and its audit record commit in one transaction (the store's
``record_decision(..., audit=...)``), and every process sharing the store reads the same
trail. This layer defines what it needs and the store implements it; the layer never knows
which database it is.

Contract for implementations:

- ``write_audit`` stores the records in one transaction; a record id already stored is
  skipped (writes are idempotent: a record re-written after a failure is not doubled).
- Reads return records in the order they were stored (their commit order).
- ``claim_unshipped`` hands each unacknowledged record to one claimant at a time: a record
  claimed by another owner whose claim has not expired is not returned (PostgreSQL:
  ``FOR UPDATE SKIP LOCKED``), so two processes re-sending after an outage never ship the
  same record at the same moment. Delivery stays at-least-once: a claim expires, and a
  downstream store deduplicates by record id.
- ``query_audit_blocking`` is the same query as ``query_audit`` for callers that cannot
  await (the seed's synchronous ``get_audit_log``); it blocks its thread for the query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from telemetry._audit_record import AuditRecord

__all__ = ["AuditOutbox"]


@runtime_checkable
class AuditOutbox(Protocol):
    """Durable storage of audit records, shared by every process of the service."""

    async def write_audit(self, records: Sequence[AuditRecord]) -> None:
        """Store ``records`` in one transaction (ids already stored are skipped)."""
        ...

    async def claim_unshipped(
        self, *, owner: str, stored_before: float, limit: int, lease_s: float, now: float
    ) -> list[AuditRecord]:
        """The oldest records no exporter acknowledged, stored before ``stored_before``,
        not claimed by another owner (or whose claim expired), now claimed by ``owner``
        until ``now + lease_s``; at most ``limit``."""
        ...

    async def acknowledge_audit(self, record_ids: Sequence[str], *, at: float) -> None:
        """Mark the records the Collector acknowledged (unknown ids are ignored)."""
        ...

    async def query_audit(
        self, *, session_id: str | None, event_type: str | None, limit: int
    ) -> list[AuditRecord]:
        """The newest ``limit`` records matching the filters (``event_type`` is a record
        type: the seed's name), oldest first."""
        ...

    def query_audit_blocking(
        self, *, session_id: str | None, event_type: str | None, limit: int
    ) -> list[AuditRecord]:
        """:meth:`query_audit` for a caller that cannot await; blocks its thread."""
        ...

    async def count_unshipped(self) -> int:
        """How many records no exporter acknowledged yet (the outbox backlog)."""
        ...
