"""The audit outbox (:class:`telemetry.AuditOutbox`) on PostgreSQL.

Apart from the store's connection handling because it changes with the outbox's contract
(how records are claimed, shipped and acknowledged), not with the sessions'. Claims take
``FOR UPDATE SKIP LOCKED``: two replicas re-sending at once never take the same record,
and neither waits for the other's rows. :func:`insert_audit` is also what a decision, a
delete or a rating calls inside its own transaction, so that the change and its audit
record are one commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg

from agent_runtime.store import _rows
from telemetry import AuditRecord

__all__ = ["PostgresOutbox", "insert_audit"]

_INSERT_AUDIT = (
    f"INSERT INTO audit_records ({_rows.AUDIT_COLUMNS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (record_id) DO NOTHING"
)
_CLAIM_AUDIT = (
    "UPDATE audit_records SET claimed_by = %s, claimed_until = %s WHERE seq IN ("
    "SELECT seq FROM audit_records WHERE exported_at IS NULL AND ts < %s "
    "AND (claimed_until IS NULL OR claimed_until < %s OR claimed_by = %s) "
    f"ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING seq, {_rows.AUDIT_COLUMNS}"
)


async def insert_audit(conn: psycopg.AsyncConnection[Any], records: Sequence[AuditRecord]) -> None:
    """Store ``records`` in ``conn``'s transaction; a record id already stored is skipped."""
    async with conn.cursor() as cur:
        await cur.executemany(_INSERT_AUDIT, [_rows.audit_values(r) for r in records])


class PostgresOutbox:
    """The outbox's calls over the store's ``_transaction`` and ``_write``."""

    def _transaction(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        raise NotImplementedError  # the store's own

    async def _write(self, sql: str, params: Iterable[Any]) -> int:
        raise NotImplementedError  # the store's own

    async def write_audit(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        async with self._transaction() as conn:
            await insert_audit(conn, records)

    async def import_audit(self, records: Sequence[tuple[AuditRecord, float | None]]) -> int:
        added = 0
        async with self._transaction() as conn:
            for record, exported_at in records:
                cur = await conn.execute(_INSERT_AUDIT, _rows.audit_values(record))
                added += cur.rowcount
                if exported_at is not None:
                    await conn.execute(
                        "UPDATE audit_records SET exported_at = %s WHERE record_id = %s",
                        (exported_at, record.record_id),
                    )
        return added

    async def claim_unshipped(
        self, *, owner: str, stored_before: float, limit: int, lease_s: float, now: float
    ) -> list[AuditRecord]:
        async with self._transaction() as conn:
            cur = await conn.execute(
                _CLAIM_AUDIT, (owner, now + lease_s, stored_before, now, owner, limit)
            )
            rows = list(await cur.fetchall())
        rows.sort(key=lambda row: row["seq"])
        return [_rows.audit_from_row(row) for row in rows]

    async def acknowledge_audit(self, record_ids: Sequence[str], *, at: float) -> None:
        if not record_ids:
            return
        await self._write(
            "UPDATE audit_records SET exported_at = %s WHERE record_id = ANY(%s) "
            "AND exported_at IS NULL",
            (at, list(record_ids)),
        )
