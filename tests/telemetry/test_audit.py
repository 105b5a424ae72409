"""The audit trail (docs/architecture.md) over the store's outbox: written to the store first, then
shipped as OTel log records; re-sent while the Collector has not acknowledged them.

The outbox here is the embedded store (a real SQLite file); what is on disk is read
through a second, independent sqlite3 connection to the file. The same contract runs on
PostgreSQL in tests/agent_runtime/test_store.py.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest
from opentelemetry.trace import SpanContext, TraceFlags

import telemetry
from agent_runtime.store import SQLiteStore, import_legacy_audit
from telemetry import names as n
from telemetry.audit import AuditDelivery, AuditLog
from tests.support.otel import Telemetered

OFF = telemetry.TelemetrySettings()
CONTEXT = SpanContext(0xA1, 0xB2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
OTHER = SpanContext(0xC3, 0xD4, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
HOLD_S = 3600.0  # a flusher with this period writes nothing by itself during a test


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "store.db") as opened:
        yield opened


@pytest.fixture
async def audit(telemetered: Telemetered, store: SQLiteStore) -> AsyncIterator[AuditLog]:
    """A trail whose flusher never runs by itself: what reaches the store got there
    through a flush, a query or close."""
    log = AuditLog(store, flush_interval_s=HOLD_S)
    log.start()
    yield log
    await log.aclose()


def _on_disk(store: SQLiteStore) -> list[str]:
    with closing(sqlite3.connect(store.path)) as db:
        return [row[0] for row in db.execute("SELECT record_id FROM audit_records ORDER BY seq")]


def _exported_ids(store: SQLiteStore) -> list[str]:
    with closing(sqlite3.connect(store.path)) as db:
        query = "SELECT record_id FROM audit_records WHERE exported_at IS NOT NULL ORDER BY seq"
        return [row[0] for row in db.execute(query)]


def _write(
    log: AuditLog, event: telemetry.TelemetryEvent, context: SpanContext = CONTEXT
) -> telemetry.AuditRecord:
    return log.write(event, event.attributes(OFF), context, details=event.audit_details(OFF))


def _deleted(session_id: str) -> telemetry.SessionDeleted:
    return telemetry.SessionDeleted(session_id=session_id)


def _decision(session_id: str, call_id: str) -> telemetry.HITLDecisionMade:
    return telemetry.HITLDecisionMade(
        tool="write_file", call_id=call_id, decision="APPROVE", session_id=session_id
    )


def _record_ids(telemetered: Telemetered) -> list[str]:
    return [str((log.log_record.attributes or {})[n.AUDIT_RECORD_ID]) for log in telemetered.logs()]


async def test_a_record_is_stored_before_its_log_record_is_emitted(
    audit: AuditLog, store: SQLiteStore, telemetered: Telemetered
) -> None:
    record = _write(audit, _decision("s1", "c1"))
    assert record.trace_id == f"{0xA1:032x}" and record.span_id == f"{0xB2:016x}"
    assert record.event_type == n.AUDIT_HITL_DECISION_MADE
    assert record.otel_name == n.EVENT_HITL_DECISION_MADE
    assert _on_disk(store) == [] and telemetered.logs() == []  # queued: neither yet
    await audit.flush()
    assert _on_disk(store) == [record.record_id]
    (log,) = telemetered.logs()
    assert (log.log_record.trace_id, log.log_record.span_id) == (0xA1, 0xB2)
    assert log.log_record.event_name == n.EVENT_HITL_DECISION_MADE  # the OTel name is kept
    attributes = log.log_record.attributes or {}
    assert attributes[n.AUDIT_EVENT_TYPE] == n.AUDIT_HITL_DECISION_MADE
    assert attributes[n.AUDIT_RECORD_ID] == record.record_id
    assert attributes[n.SESSION_ID] == "s1"


async def test_the_flusher_writes_and_ships_when_a_request_ends(
    telemetered: Telemetered, store: SQLiteStore
) -> None:
    log = AuditLog(store, flush_interval_s=HOLD_S)
    log.start()
    try:
        record = _write(log, _deleted("s1"))
        log.flush_soon()  # what a request's end does
        deadline = time.monotonic() + 5
        while _record_ids(telemetered) != [record.record_id]:
            assert time.monotonic() < deadline, "the flusher did not run"
            await asyncio.sleep(0.01)
        assert _on_disk(store) == [record.record_id]
    finally:
        await log.aclose()


async def test_queries_see_queued_records_and_filter_by_either_name(
    audit: AuditLog, store: SQLiteStore
) -> None:
    a1 = _write(audit, _decision("a", "c1"))
    b1 = _write(audit, _decision("b", "c2"), OTHER)
    a2 = _write(audit, _deleted("a"))
    # the synchronous query reads the store and the queue, without waiting for a write
    assert audit.query_blocking(session_id="a") == [a1, a2]
    assert _on_disk(store) == []
    assert await audit.query(session_id="a") == [a1, a2]
    assert await audit.query(session_id="b") == [b1]
    assert await audit.query(event_type=n.AUDIT_SESSION_DELETED) == [a2]
    assert await audit.query(event_type=n.EVENT_SESSION_DELETED) == [a2]  # the OTel name too
    assert await audit.query(session_id="a", event_type=n.AUDIT_HITL_DECISION_MADE) == [a1]
    assert await audit.query(session_id="nobody") == []
    assert audit.query_blocking(session_id="a") == [a1, a2]  # written now; nothing doubled


async def test_limit_keeps_the_newest_in_order(audit: AuditLog) -> None:
    written = [_write(audit, _decision("s", f"c{i}")) for i in range(5)]
    await audit.flush()
    extra = _write(audit, _decision("s", "c5"))  # still queued
    assert await audit.query(limit=2) == [written[4], extra]
    assert audit.query_blocking(limit=3) == [*written[3:], extra]
    assert await audit.query(limit=0) == []


async def test_records_survive_reopening_the_store(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    path = tmp_path / "store.db"
    async with SQLiteStore(path) as first:
        log = AuditLog(first)
        log.start()
        written = [_write(log, _deleted("s1")), _write(log, _decision("s1", "c1"))]
        await log.aclose()
    async with SQLiteStore(path) as again:
        log = AuditLog(again, flush_interval_s=HOLD_S)
        assert await log.query() == written
        assert await again.count_unshipped() == 2
        await log.aclose()


async def test_the_audit_logger_answers_in_the_seeds_shape(audit: AuditLog) -> None:
    record = _write(audit, _deleted("s1"))
    logger = telemetry.AuditLogger(audit)
    assert logger.get_audit_log(session_id="s1") == [record.to_dict()]
    (entry,) = await logger.aget_audit_log(event_type="session_deleted", limit=1)
    assert set(entry) == {
        "timestamp",
        "event_type",
        "event_id",
        "session_id",
        "correlation_id",
        "record_id",
        "trace_id",
        "span_id",
        "otel_event_name",
        "attributes",
        "summary",
    }
    assert entry["event_id"] == entry["record_id"] == record.record_id
    assert entry["correlation_id"] == entry["trace_id"] == record.trace_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["timestamp"])
    assert datetime.fromisoformat(entry["timestamp"]).timestamp() == pytest.approx(
        record.timestamp, abs=0.001
    )


async def test_acknowledged_records_are_not_sent_again(
    telemetered: Telemetered, store: SQLiteStore
) -> None:
    delivery = AuditDelivery()
    log = AuditLog(store, delivery=delivery, flush_interval_s=HOLD_S)
    log.start()
    try:
        first, second = _write(log, _deleted("s1")), _write(log, _decision("s1", "c1"))
        await log.flush()
        delivery.acknowledge([first.record_id, "not-a-record"])
        await log.flush()
        assert _exported_ids(store) == [first.record_id]
        assert await log.backlog() == 1
        telemetered.reset()
        assert await log.resend(older_than_s=-1, limit=10) == 1
        assert _record_ids(telemetered) == [second.record_id]  # the same id, shipped again
    finally:
        await log.aclose()


async def test_two_processes_never_resend_the_same_record_at_once(
    telemetered: Telemetered, store: SQLiteStore
) -> None:
    one = AuditLog(store, flush_interval_s=HOLD_S)
    other = AuditLog(store, flush_interval_s=HOLD_S)
    written = [_write(one, _deleted(f"s{i}")) for i in range(6)]
    await one.flush()
    telemetered.reset()
    counts = await asyncio.gather(
        one.resend(older_than_s=-1, limit=4), other.resend(older_than_s=-1, limit=4)
    )
    shipped = _record_ids(telemetered)
    assert sorted(counts) == [2, 4]
    assert sorted(shipped) == sorted(r.record_id for r in written)  # each once
    # each re-sends its own claims again, never the other's while they last
    assert sorted(
        [await one.resend(older_than_s=-1, limit=10), await other.resend(older_than_s=-1, limit=10)]
    ) == sorted(counts)
    await one.aclose()
    await other.aclose()


async def test_a_lapsed_claim_lets_another_process_resend_the_records(
    telemetered: Telemetered, store: SQLiteStore
) -> None:
    """A process that claimed records and died holds them back only for its lease."""
    dead = AuditLog(store, flush_interval_s=HOLD_S)
    alive = AuditLog(store, flush_interval_s=HOLD_S)
    written = [_write(dead, _deleted(f"s{i}")) for i in range(3)]
    await dead.flush()
    assert await dead.resend(older_than_s=-1, limit=10, lease_s=3600) == 3
    assert await alive.resend(older_than_s=-1, limit=10) == 0  # the claim holds
    assert await dead.resend(older_than_s=-1, limit=10, lease_s=-1) == 3  # a lease now lapsed
    telemetered.reset()
    assert await alive.resend(older_than_s=-1, limit=10) == 3
    assert sorted(_record_ids(telemetered)) == sorted(r.record_id for r in written)
    await dead.aclose()
    await alive.aclose()


async def test_a_record_stored_with_its_change_is_shipped_once(
    audit: AuditLog, store: SQLiteStore, telemetered: Telemetered
) -> None:
    event = _deleted("s1")
    record = audit.build(event, event.attributes(OFF), CONTEXT)
    await store.write_audit([record])  # the caller's transaction, with its change
    audit.committed([record])
    await audit.flush()
    assert _on_disk(store) == [record.record_id]
    assert _record_ids(telemetered) == [record.record_id]


class FailingOutbox:
    """A store that refuses writes until told otherwise (the real one underneath)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.refuse = True

    async def write_audit(self, records: Sequence[telemetry.AuditRecord]) -> None:
        if self.refuse:
            raise ConnectionError("the store is away")
        await self.store.write_audit(records)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


async def test_a_refused_write_keeps_the_records_queued_until_the_store_is_back(
    telemetered: Telemetered, store: SQLiteStore
) -> None:
    outbox = FailingOutbox(store)
    log = AuditLog(outbox, flush_interval_s=HOLD_S)  # type: ignore[arg-type]
    written = [_write(log, _deleted("s1")), _write(log, _decision("s1", "c1"))]
    with pytest.raises(ConnectionError):
        await log.flush()
    assert telemetered.logs() == []  # nothing shipped that is not stored
    outbox.refuse = False
    await log.flush()
    assert _on_disk(store) == [r.record_id for r in written]
    assert _record_ids(telemetered) == [r.record_id for r in written]
    await log.aclose()


async def test_the_queue_is_bounded_while_the_store_refuses_writes(
    telemetered: Telemetered, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = FailingOutbox(store)
    log = AuditLog(outbox, flush_interval_s=HOLD_S, max_queued=3)  # type: ignore[arg-type]
    written = [_write(log, _deleted(f"s{i}")) for i in range(5)]
    assert log.dropped == 2
    assert "dropped" in caplog.text
    outbox.refuse = False
    await log.flush()
    assert _on_disk(store) == [r.record_id for r in written[2:]]  # the newest three
    await log.aclose()


async def test_without_shipping_records_wait_unacknowledged(
    telemetered: Telemetered, store: SQLiteStore
) -> None:
    log = AuditLog(store, ship=False)
    _write(log, _deleted("s1"))
    await log.aclose()
    assert telemetered.logs() == []
    assert await store.count_unshipped() == 1
    assert await log.resend(older_than_s=-1, limit=10) == 0


async def test_a_write_after_close_is_logged_and_dropped(
    audit: AuditLog, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    await audit.aclose()
    _write(audit, _deleted("s1"))
    assert "dropped" in caplog.text
    assert _on_disk(store) == []


def _old_audit_file(path: Path, *, with_details: bool) -> None:
    """An audit file as earlier releases wrote it, beside their database."""
    with closing(sqlite3.connect(path)) as db:
        extra = (
            ", otel_name TEXT NOT NULL DEFAULT '', details TEXT NOT NULL DEFAULT '{}'"
            if with_details
            else ""
        )
        db.executescript(
            "CREATE TABLE audit_records (record_id TEXT PRIMARY KEY, ts REAL NOT NULL,"
            " event_type TEXT NOT NULL, session_id TEXT, trace_id TEXT NOT NULL,"
            " span_id TEXT NOT NULL, attributes TEXT NOT NULL, summary TEXT NOT NULL,"
            f" exported_at REAL{extra});"
        )
        rows = [
            ("r1", 1.0, "hitl.decision_made", "s1", "a" * 32, "b" * 16, "{}", "decided", None),
            ("r2", 2.0, "agent.switched", "s1", "a" * 32, "b" * 16, "{}", "switched", 3.0),
        ]
        if with_details:
            db.executemany(
                "INSERT INTO audit_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (*r[:2], n.AUDIT_AGENT_ERROR, *r[3:], "agent.error", '{"agent": "x"}')
                    for r in rows
                ],
            )
        else:
            db.executemany("INSERT INTO audit_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.commit()


async def test_an_older_releases_audit_file_moves_into_the_store_once(
    telemetered: Telemetered, store: SQLiteStore, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _old_audit_file(data / "audit.db", with_details=False)
    assert await import_legacy_audit(store, data) == 2
    assert not (data / "audit.db").exists() and (data / "audit.db.imported").exists()
    log = AuditLog(store, flush_interval_s=HOLD_S)
    (decision,) = await log.query(event_type="hitl_decision_made")
    assert (decision.record_id, decision.otel_name) == ("r1", n.EVENT_HITL_DECISION_MADE)
    assert [r.record_id for r in await log.query(event_type="agent.switched")] == ["r2"]
    assert await store.count_unshipped() == 1  # r2 had been acknowledged
    assert decision.to_dict()["event_id"] == "r1"
    # a second file with the same records adds nothing
    _old_audit_file(data / "audit.db", with_details=True)
    assert await import_legacy_audit(store, data) == 0
    assert await import_legacy_audit(store, data) == 0  # nothing left to move
    await log.aclose()
