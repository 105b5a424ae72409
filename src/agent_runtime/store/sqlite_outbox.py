"""The audit outbox (:class:`telemetry.AuditOutbox`) on SQLite.

Apart from the store's connection handling because it changes with the outbox's contract
(how records are claimed, shipped and acknowledged), not with the sessions'. Every call is
one write transaction (the store's ``_atomic``); a claim is one ``UPDATE ... RETURNING``, so
two claims never take the same record. :func:`insert_audit` is also what a decision, a
delete or a rating calls inside its own transaction, so that the change and its audit record
are one commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import aiosqlite

from agent_runtime.store import _rows
from telemetry import AuditRecord

__all__ = ["SQLiteOutbox", "insert_audit"]

_T = TypeVar("_T")

_INSERT_AUDIT = (
    f"INSERT OR IGNORE INTO audit_records ({_rows.AUDIT_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CLAIM_AUDIT = (
    "UPDATE audit_records SET claimed_by = ?, claimed_until = ? WHERE seq IN ("
    "SELECT seq FROM audit_records WHERE exported_at IS NULL AND ts < ? "
    "AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?) "
    f"ORDER BY seq LIMIT ?) RETURNING seq, {_rows.AUDIT_COLUMNS}"
)


async def insert_audit(db: aiosqlite.Connection, records: Sequence[AuditRecord]) -> None:
    """Store ``records`` in ``db``'s transaction; a record id already stored is skipped."""
    await db.executemany(_INSERT_AUDIT, [_rows.audit_values(r) for r in records])


class SQLiteOutbox:
    """The outbox's calls over the store's ``_atomic`` transactions."""

    async def _atomic(self, work: Callable[[aiosqlite.Connection], Awaitable[_T]]) -> _T:
        raise NotImplementedError  # the store's own

    async def write_audit(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return

        async def work(db: aiosqlite.Connection) -> None:
            await insert_audit(db, records)

        await self._atomic(work)

    async def import_audit(self, records: Sequence[tuple[AuditRecord, float | None]]) -> int:
        """Records of an older release's audit file, with when each was acknowledged;
        returns how many were new here."""

        async def work(db: aiosqlite.Connection) -> int:
            added = 0
            for record, exported_at in records:
                async with db.execute(_INSERT_AUDIT, _rows.audit_values(record)) as cur:
                    added += cur.rowcount
                if exported_at is not None:
                    await db.execute(
                        "UPDATE audit_records SET exported_at = ? WHERE record_id = ?",
                        (exported_at, record.record_id),
                    )
            return added

        return await self._atomic(work)

    async def claim_unshipped(
        self, *, owner: str, stored_before: float, limit: int, lease_s: float, now: float
    ) -> list[AuditRecord]:
        params = (owner, now + lease_s, stored_before, now, owner, limit)

        async def work(db: aiosqlite.Connection) -> list[aiosqlite.Row]:
            async with db.execute(_CLAIM_AUDIT, params) as cur:
                return list(await cur.fetchall())

        rows = await self._atomic(work)
        rows.sort(key=lambda row: row["seq"])
        return [_rows.audit_from_row(row) for row in rows]

    async def acknowledge_audit(self, record_ids: Sequence[str], *, at: float) -> None:
        if not record_ids:
            return
        rows = [(at, record_id) for record_id in record_ids]

        async def work(db: aiosqlite.Connection) -> None:
            await db.executemany(
                "UPDATE audit_records SET exported_at = ? WHERE record_id = ? "
                "AND exported_at IS NULL",
                rows,
            )

        await self._atomic(work)
