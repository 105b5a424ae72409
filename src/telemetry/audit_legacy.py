"""The audit files of releases that kept the audit trail in a SQLite file of its own.

Those releases wrote ``<data dir>/audit.db`` beside the service's database. Their records
move into the store (:class:`~telemetry.outbox.AuditOutbox`) when a newer release starts:
this module reads them, in the order they were committed, under the seed's record types
(the oldest files named records by their OTel event names), with whether the Collector had
acknowledged each one, so acknowledged records are not shipped again.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from telemetry._audit_record import AuditRecord, audit_type

__all__ = ["LEGACY_AUDIT_FILENAME", "read_legacy_audit_file"]

LEGACY_AUDIT_FILENAME = "audit.db"

_SELECT = (
    "SELECT record_id, ts, event_type, session_id, trace_id, span_id, attributes, summary,"
    " exported_at FROM audit_records ORDER BY rowid"
)
_SELECT_WITH_DETAILS = (
    "SELECT record_id, ts, event_type, session_id, trace_id, span_id, attributes, summary,"
    " exported_at, otel_name, details FROM audit_records ORDER BY rowid"
)


def read_legacy_audit_file(path: Path) -> list[tuple[AuditRecord, float | None]]:
    """Every record of the file with the time the Collector acknowledged it (None: never).
    An empty list when the file holds no audit table."""
    with closing(sqlite3.connect(path)) as db:
        # Fold the write-ahead log into the file first: the file is then whole on its own.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "audit_records" not in tables:
            return []
        columns = {row[1] for row in db.execute("PRAGMA table_info(audit_records)")}
        extra = {"otel_name", "details"} <= columns
        rows = db.execute(_SELECT_WITH_DETAILS if extra else _SELECT).fetchall()
    out: list[tuple[AuditRecord, float | None]] = []
    for row in rows:
        stored_type = str(row[2])
        otel_name = str(row[9]) if extra and row[9] else stored_type
        out.append(
            (
                AuditRecord(
                    record_id=row[0],
                    timestamp=row[1],
                    event_type=audit_type(stored_type),
                    session_id=row[3],
                    trace_id=row[4],
                    span_id=row[5],
                    attributes=json.loads(row[6]),
                    summary=row[7],
                    otel_name=otel_name if "." in otel_name else "",
                    details=json.loads(row[10]) if extra else {},
                ),
                row[8],
            )
        )
    return out
