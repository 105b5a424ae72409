"""The audit outbox (DESIGN §4): committed to SQLite first, then OTel log records; resend what
the Collector has not acknowledged. Group commit: queued records reach the file through the
writer thread, a durable write, a flush, a query or close, never after their log record; the
log records are emitted by the writer thread, a flush or close, off the committing request.

What is on disk is read through a second, independent sqlite3 connection to the file."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.trace import SpanContext, TraceFlags

import telemetry
from telemetry import _audit_record as audit_record
from telemetry import audit as audit_module
from telemetry import names as n
from telemetry.audit import AuditDelivery, AuditLog
from tests.support.otel import Telemetered

OFF = telemetry.TelemetrySettings()
CONTEXT = SpanContext(0xA1, 0xB2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
OTHER = SpanContext(0xC3, 0xD4, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
HOLD_S = 3600.0  # a writer thread with this period commits nothing during a test


@pytest.fixture
def audit(telemetered: Telemetered, tmp_path: Path) -> Iterator[AuditLog]:
    log = AuditLog(tmp_path / "audit.db")
    yield log
    log.close()


@pytest.fixture
def held(telemetered: Telemetered, tmp_path: Path) -> Iterator[AuditLog]:
    """A log whose writer thread never commits during the test, so whatever reaches the file
    got there through a durable write, flush, query, back-pressure or close."""
    log = AuditLog(tmp_path / "audit.db", commit_interval_s=HOLD_S)
    yield log
    log.close()


def _on_disk(path: Path) -> list[str]:
    """Record ids committed to ``path``, read through a connection of its own."""
    with closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT record_id FROM audit_records ORDER BY rowid")]


def _write(
    log: AuditLog,
    event: telemetry.TelemetryEvent,
    context: SpanContext = CONTEXT,
    *,
    durable: bool = False,
) -> telemetry.AuditRecord:
    return log.write(event, event.attributes(OFF), context, durable=durable)


def _deleted(session_id: str) -> telemetry.SessionDeleted:
    return telemetry.SessionDeleted(session_id=session_id)


def _decision(session_id: str, call_id: str) -> telemetry.HITLDecisionMade:
    return telemetry.HITLDecisionMade(
        tool="write_file", call_id=call_id, decision="APPROVE", session_id=session_id
    )


def _record_ids(telemetered: Telemetered) -> list[str]:
    return [str((log.log_record.attributes or {})[n.AUDIT_RECORD_ID]) for log in telemetered.logs()]


def test_write_stores_and_ships_the_record(audit: AuditLog, telemetered: Telemetered) -> None:
    record = _write(audit, _decision("s1", "c1"))
    assert record.trace_id == f"{0xA1:032x}"
    assert record.span_id == f"{0xB2:016x}"
    assert record.event_type == n.AUDIT_HITL_DECISION_MADE
    assert record.otel_name == n.EVENT_HITL_DECISION_MADE
    assert record.session_id == "s1"
    assert record.attributes[n.HITL_DECISION] == "APPROVE"
    assert audit.query() == [record]
    audit.flush()  # what the writer thread does at its next period
    (log,) = telemetered.logs()
    assert log.log_record.trace_id == 0xA1
    assert log.log_record.span_id == 0xB2
    attributes = log.log_record.attributes or {}
    assert attributes[n.AUDIT_EVENT_TYPE] == n.AUDIT_HITL_DECISION_MADE
    assert log.log_record.event_name == n.EVENT_HITL_DECISION_MADE  # the OTel name is kept
    assert attributes[n.AUDIT_RECORD_ID] == record.record_id
    assert attributes[n.SESSION_ID] == "s1"
    assert attributes[n.HITL_DECISION] == "APPROVE"


def test_records_survive_reopening_the_file(telemetered: Telemetered, tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    first = AuditLog(path)
    written = [_write(first, _deleted("s1")), _write(first, _decision("s1", "c1"))]
    first.close()
    again = AuditLog(path)
    try:
        assert again.query() == written
        assert [r.record_id for r in again.unexported()] == [r.record_id for r in written]
    finally:
        again.close()


def test_query_filters_by_session_and_event_type(audit: AuditLog) -> None:
    a1 = _write(audit, _decision("a", "c1"))
    b1 = _write(audit, _decision("b", "c2"), OTHER)
    a2 = _write(audit, _deleted("a"))
    assert audit.query(session_id="a") == [a1, a2]
    assert audit.query(session_id="b") == [b1]
    assert audit.query(event_type=n.AUDIT_SESSION_DELETED) == [a2]
    assert audit.query(event_type=n.EVENT_SESSION_DELETED) == [a2]  # the OTel name works too
    assert audit.query(session_id="a", event_type=n.AUDIT_HITL_DECISION_MADE) == [a1]
    assert audit.query(session_id="nobody") == []
    assert audit.query()[1].trace_id == f"{0xC3:032x}"


def test_limit_keeps_the_newest_in_chronological_order(audit: AuditLog) -> None:
    written = [_write(audit, _decision("s", f"c{i}")) for i in range(5)]
    assert audit.query(limit=2) == written[3:]
    assert audit.query(limit=10) == written
    assert audit.query(limit=0) == []


def test_audit_logger_returns_dicts(audit: AuditLog) -> None:
    record = _write(audit, _deleted("s1"))
    logger = telemetry.AuditLogger(audit)
    assert logger.get_audit_log(session_id="s1") == [record.to_dict()]
    (entry,) = logger.get_audit_log(event_type="session_deleted", limit=1)
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


def test_resend_unexported_emits_the_same_record_ids(
    audit: AuditLog, telemetered: Telemetered
) -> None:
    written = [_write(audit, _deleted("s1")), _write(audit, _decision("s1", "c1"))]
    audit.flush()
    assert audit.resend_unexported(older_than_s=0) == 2
    ids = [r.record_id for r in written]
    assert _record_ids(telemetered) == ids + ids
    resent = telemetered.logs()[2:]
    assert [log.log_record.trace_id for log in resent] == [0xA1, 0xA1]


def test_resend_waits_for_older_than(audit: AuditLog, telemetered: Telemetered) -> None:
    _write(audit, _deleted("s1"))
    assert audit.resend_unexported(older_than_s=3600) == 0
    audit.flush()
    assert len(telemetered.logs()) == 1


def test_acknowledged_records_are_no_longer_resent(
    audit: AuditLog, telemetered: Telemetered
) -> None:
    first = _write(audit, _deleted("s1"))
    second = _write(audit, _deleted("s2"))
    audit.flush()  # an exporter acknowledges only what was emitted, i.e. committed
    audit.delivery.acknowledge([first.record_id, "not-a-record"])
    assert [r.record_id for r in audit.unexported()] == [second.record_id]
    assert audit.resend_unexported(older_than_s=0) == 1
    assert _record_ids(telemetered)[-1] == second.record_id
    audit.delivery.acknowledge([second.record_id])
    assert audit.unexported() == []
    assert audit.resend_unexported(older_than_s=0) == 0


def test_a_closed_log_stops_listening_for_acknowledgements(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    delivery = AuditDelivery()
    log = AuditLog(tmp_path / "audit.db", delivery=delivery)
    record = _write(log, _deleted("s1"))
    log.close()
    delivery.acknowledge([record.record_id])  # must not reach the closed database
    reopened = AuditLog(tmp_path / "audit.db")
    try:
        assert [r.record_id for r in reopened.unexported()] == [record.record_id]
    finally:
        reopened.close()


def test_hub_resend_audit(telemetered: Telemetered, tmp_path: Path) -> None:
    hub = telemetry.Telemetry(settings=OFF, audit_path=tmp_path / "a.db")
    try:
        with trace.get_tracer("tests").start_as_current_span("s"):
            hub.emit(_deleted("s1"))
        hub.flush()
        assert hub.resend_audit(older_than_s=0) == 1
        assert len(set(_record_ids(telemetered))) == 1
        assert len(telemetered.logs()) == 2
    finally:
        hub.close()
    assert telemetry.Telemetry(settings=OFF).resend_audit() == 0  # no audit store


def test_hub_resend_audit_follows_its_providers_delivery_state(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    delivery = AuditDelivery()
    providers = telemetry.Providers(
        telemetered.providers.tracer_provider,
        telemetered.providers.meter_provider,
        telemetered.providers.logger_provider,
        owned=False,
        audit_delivery=delivery,
    )
    hub = telemetry.Telemetry(audit_path=tmp_path / "audit.db", providers=providers)
    try:
        for _ in range(audit_module.RESEND_PROBE + 5):
            hub.emit(telemetry.SessionDeleted(session_id="s"))
        delivery.report_failure()
        assert hub.resend_audit(older_than_s=0) == audit_module.RESEND_PROBE
        delivery.acknowledge([])
        assert hub.resend_audit(older_than_s=0) == audit_module.RESEND_PROBE + 5
        assert hub.audit is not None
        delivery.acknowledge([str(r["record_id"]) for r in hub.audit.get_audit_log()])
        assert hub.resend_audit(older_than_s=0) == 0  # every record acknowledged
        delivery.enabled = False
        hub.emit(telemetry.SessionDeleted(session_id="s"))
        assert hub.resend_audit(older_than_s=0) == 0
    finally:
        hub.close()


def test_a_hub_hears_only_its_own_providers_acknowledgements(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    """No process-wide channel: two applications with two deliveries, an acknowledgement
    on one marks records of that one only."""
    deliveries = [AuditDelivery(), AuditDelivery()]
    hubs = [
        telemetry.Telemetry(
            audit_path=tmp_path / f"audit-{index}.db",
            providers=telemetry.Providers(
                telemetered.providers.tracer_provider,
                telemetered.providers.meter_provider,
                telemetered.providers.logger_provider,
                owned=False,
                audit_delivery=delivery,
            ),
        )
        for index, delivery in enumerate(deliveries)
    ]
    try:
        for hub in hubs:
            hub.emit(telemetry.SessionDeleted(session_id="s"))
            hub.flush()
        ids = [hub.audit.get_audit_log()[0]["record_id"] for hub in hubs if hub.audit]
        deliveries[0].acknowledge(ids)  # both ids, on the first application's delivery
        assert [hub.resend_audit(older_than_s=0) for hub in hubs] == [0, 1]
    finally:
        for hub in hubs:
            hub.close()


# Group commit -----------------------------------------------------------------------------


def test_a_durable_write_is_on_disk_when_it_returns(
    held: AuditLog, telemetered: Telemetered, tmp_path: Path
) -> None:
    record = _write(held, _decision("s1", "c1"), durable=True)
    assert _on_disk(tmp_path / "audit.db") == [record.record_id]
    assert telemetered.logs() == []  # shipped by the writer thread, not the committing request
    held.flush()
    assert _record_ids(telemetered) == [record.record_id]


def test_queued_records_reach_the_file_and_the_exporter_on_flush(
    held: AuditLog, telemetered: Telemetered, tmp_path: Path
) -> None:
    written = [_write(held, _decision("s1", f"c{i}")) for i in range(3)]
    assert _on_disk(tmp_path / "audit.db") == []
    assert telemetered.logs() == []  # not shipped before it is committed
    held.flush()
    ids = [r.record_id for r in written]
    assert _on_disk(tmp_path / "audit.db") == ids
    assert _record_ids(telemetered) == ids


def test_a_durable_write_commits_the_records_queued_before_it(
    held: AuditLog, telemetered: Telemetered, tmp_path: Path
) -> None:
    queued = [_write(held, _decision("s1", "c1")), _write(held, _decision("s1", "c2"))]
    deleted = _write(held, _deleted("s1"), durable=True)
    ids = [r.record_id for r in [*queued, deleted]]
    assert _on_disk(tmp_path / "audit.db") == ids
    held.flush()
    assert _record_ids(telemetered) == ids


def test_past_the_shipping_bound_the_committing_thread_ships(
    held: AuditLog, telemetered: Telemetered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed records wait for the writer thread only up to a bound: memory stays bounded
    even if that thread is stalled."""
    monkeypatch.setattr(audit_module, "MAX_UNSHIPPED", 3)
    written = [_write(held, _deleted(f"s{i}"), durable=True) for i in range(2)]
    assert telemetered.logs() == []
    written.append(_write(held, _deleted("s2"), durable=True))
    assert _record_ids(telemetered) == [r.record_id for r in written]


@pytest.mark.parametrize("count", [1, 100])
def test_a_batch_of_any_size_is_committed_whole_and_in_order(
    held: AuditLog, telemetered: Telemetered, tmp_path: Path, count: int
) -> None:
    written = [_write(held, _decision("s1", f"c{i}")) for i in range(count)]
    held.flush()
    ids = [r.record_id for r in written]
    assert _on_disk(tmp_path / "audit.db") == ids
    assert _record_ids(telemetered) == ids
    assert held.query(limit=count) == written


@pytest.mark.parametrize("count", [2, 40])
def test_a_failed_batch_leaves_no_row_and_stays_queued(
    held: AuditLog, telemetered: Telemetered, tmp_path: Path, count: int
) -> None:
    path = tmp_path / "audit.db"
    written = [_write(held, _decision("s1", f"c{i}")) for i in range(count)]
    with closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TRIGGER refuse_last BEFORE INSERT ON audit_records"
            f" WHEN NEW.record_id = '{written[-1].record_id}'"
            " BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"
        )
        db.commit()
        with pytest.raises(sqlite3.IntegrityError):
            held.flush()
        assert _on_disk(path) == []  # the rows before the refused one are rolled back too
        assert telemetered.logs() == []
        db.execute("DROP TRIGGER refuse_last")
        db.commit()
    held.flush()
    assert _on_disk(path) == [r.record_id for r in written]


def test_a_failed_commit_still_ships_what_earlier_commits_made_durable(
    held: AuditLog, telemetered: Telemetered, tmp_path: Path
) -> None:
    committed = _write(held, _deleted("s1"), durable=True)  # committed, not shipped yet
    refused = _write(held, _decision("s1", "c1"))
    with closing(sqlite3.connect(tmp_path / "audit.db")) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_records"
            " BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"
        )
        db.commit()
        with pytest.raises(sqlite3.IntegrityError):
            held.flush()
    assert _record_ids(telemetered) == [committed.record_id]
    assert refused.record_id not in _on_disk(tmp_path / "audit.db")


def test_record_ids_are_unique_time_ordered_uuid7s(held: AuditLog) -> None:
    """Time-ordered ids keep a batch's primary-key entries on one index leaf."""
    before_ms = int(time.time() * 1000)
    ids = [_write(held, _decision("s1", f"c{i}")).record_id for i in range(200)]
    after_ms = int(time.time() * 1000)
    assert len(set(ids)) == len(ids)
    for record_id in ids:
        parsed = uuid.UUID(hex=record_id)
        assert record_id == parsed.hex  # 32 lowercase hex digits, as uuid4().hex gave
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert before_ms <= int(record_id[:12], 16) <= after_ms
    assert [record_id[:12] for record_id in ids] == sorted(record_id[:12] for record_id in ids)


def test_opening_a_file_drops_the_indexes_no_query_uses(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    AuditLog(path).close()
    with closing(sqlite3.connect(path)) as db:  # a file written by an older version
        db.execute("CREATE INDEX audit_by_session ON audit_records (session_id, ts)")
        db.execute("CREATE INDEX audit_by_type ON audit_records (event_type, ts)")
        db.commit()
    log = AuditLog(path)
    try:
        record = _write(log, _deleted("s1"))
        assert log.query(session_id="s1") == [record]
        with closing(sqlite3.connect(path)) as db:
            indexes = {
                row[0]
                for row in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index'"
                    " AND tbl_name = 'audit_records' AND sql IS NOT NULL"
                )
            }
            plan = db.execute(
                "EXPLAIN QUERY PLAN SELECT record_id FROM audit_records"
                " WHERE exported_at IS NULL AND ts <= ? ORDER BY ts",
                (0.0,),
            ).fetchall()
        assert indexes == {"audit_unexported"}
        assert "audit_unexported" in str(plan)  # the outbox backlog still has its index
    finally:
        log.close()


def test_query_returns_the_last_written_even_when_the_clock_steps_back(
    held: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Newest" is the order of writing, not of timestamps (an NTP step can go backwards)."""
    clock = iter([100.0, 50.0, 75.0])
    monkeypatch.setattr(audit_record, "time", SimpleNamespace(time=lambda: next(clock)))
    written = [_write(held, _decision("s1", f"c{i}")) for i in range(3)]
    assert [r.timestamp for r in written] == [100.0, 50.0, 75.0]
    assert held.query(limit=2) == written[1:]
    assert held.query(session_id="s1", limit=3) == written


def test_query_and_unexported_see_a_record_written_just_before(held: AuditLog) -> None:
    record = _write(held, _decision("s1", "c1"))
    assert held.query(session_id="s1") == [record]
    second = _write(held, _deleted("s1"))
    assert [r.record_id for r in held.unexported()] == [record.record_id, second.record_id]


class DiskCheckingExporter(LogRecordExporter):
    """Checks, when each audit log record is exported, that its row is already committed."""

    def __init__(self, path: Path, expected: int) -> None:
        self.path = path
        self.expected = expected
        self.shipped: list[str] = []
        self.missing: list[str] = []
        self.done = threading.Event()
        self._lock = threading.Lock()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        on_disk = set(_on_disk(self.path))
        with self._lock:
            for log in batch:
                record_id = str((log.log_record.attributes or {})[n.AUDIT_RECORD_ID])
                self.shipped.append(record_id)
                if record_id not in on_disk:
                    self.missing.append(record_id)
            if len(self.shipped) >= self.expected:
                self.done.set()
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _checked_log(path: Path, expected: int) -> tuple[AuditLog, DiskCheckingExporter]:
    exporter = DiskCheckingExporter(path, expected)
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return AuditLog(path, logger=provider.get_logger("tests")), exporter


def test_the_writer_thread_commits_before_it_ships(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log, exporter = _checked_log(path, expected=7)
    try:
        written = [_write(log, _decision("s1", f"c{i}")) for i in range(5)]
        written.append(_write(log, _deleted("s1"), durable=True))
        written.append(_write(log, _decision("s2", "c9")))  # only the writer thread commits it
        assert exporter.done.wait(10), "the writer thread never committed the queue"
    finally:
        log.close()
    assert sorted(exporter.shipped) == sorted(r.record_id for r in written)
    assert exporter.missing == []


def test_close_commits_what_is_queued(telemetered: Telemetered, tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(path, commit_interval_s=HOLD_S)
    written = [_write(log, _decision("s1", f"c{i}")) for i in range(3)]
    log.close()
    assert _on_disk(path) == [r.record_id for r in written]
    assert _record_ids(telemetered) == [r.record_id for r in written]


def test_close_twice_and_write_after_close_log_and_drop(
    telemetered: Telemetered, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(path)
    kept = _write(log, _deleted("s1"), durable=True)
    log.close()
    log.close()
    late = [_write(log, _deleted("s2")), _write(log, _deleted("s3"), durable=True)]
    assert _on_disk(path) == [kept.record_id]
    dropped = [r.getMessage() for r in caplog.records if "audit log closed" in r.getMessage()]
    assert len(dropped) == 2
    assert all(record.record_id in message for record, message in zip(late, dropped, strict=True))
    assert _record_ids(telemetered) == [kept.record_id]


def test_concurrent_writers_lose_and_duplicate_nothing(
    audit: AuditLog, telemetered: Telemetered, tmp_path: Path
) -> None:
    threads, per_thread = 8, 250
    start = threading.Barrier(threads)
    written: list[list[telemetry.AuditRecord]] = [[] for _ in range(threads)]

    def writer(index: int) -> None:
        start.wait()
        for i in range(per_thread):
            event = _decision(f"s{index}", f"c{i}")
            written[index].append(_write(audit, event, durable=i % 50 == 49))

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    audit.flush()
    ids = sorted(r.record_id for records in written for r in records)
    assert len(set(ids)) == threads * per_thread
    assert sorted(_on_disk(tmp_path / "audit.db")) == ids
    assert sorted(_record_ids(telemetered)) == ids


def test_a_full_queue_commits_inline(telemetered: Telemetered, tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(path, commit_interval_s=HOLD_S, max_queued=3)
    try:
        written = [_write(log, _deleted(f"s{i}")) for i in range(3)]
        assert _on_disk(path) == []
        written.append(_write(log, _deleted("s3")))  # one past the bound
        assert _on_disk(path) == [r.record_id for r in written]
        assert telemetered.logs() == []  # committed inline, shipped by the writer thread
        log.flush()
        assert len(telemetered.logs()) == 4
    finally:
        log.close()


class Signal(logging.Handler):
    """Sets ``event`` when the audit module logs a message containing ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def test_a_failed_commit_is_logged_and_retried_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_module, "RETRY_S", 0.01)
    path = tmp_path / "audit.db"
    log, exporter = _checked_log(path, expected=2)
    failed = Signal("audit batch commit failed")
    logging.getLogger(audit_module.__name__).addHandler(failed)
    try:
        with closing(sqlite3.connect(path)) as db:
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_records"
                " BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"
            )
            db.commit()
            queued = _write(log, _deleted("s1"))  # must not raise
            assert failed.event.wait(10), "the writer thread did not report the failure"
            with pytest.raises(sqlite3.IntegrityError):
                _write(log, _decision("s1", "c1"), durable=True)
            assert exporter.shipped == []
            db.execute("DROP TRIGGER refuse")
            db.commit()
        assert exporter.done.wait(10), "the writer thread did not retry"
        assert exporter.missing == []
        assert len(_on_disk(path)) == 2
        assert queued.record_id in _on_disk(path)
    finally:
        logging.getLogger(audit_module.__name__).removeHandler(failed)
        log.close()


def test_without_shipping_records_are_kept_but_no_log_record_is_built(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(path, ship=False)
    try:
        record = _write(log, _deleted("s1"), durable=True)
        assert _on_disk(path) == [record.record_id]
        assert [r.record_id for r in log.unexported()] == [record.record_id]
    finally:
        log.close()
    assert _record_ids(telemetered) == []


def test_a_file_written_before_the_seed_record_shape_upgrades_in_place(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    """A file of the previous release (records under the OTel event names, no seed fields)
    opens: its records are renamed to the seed's types, so the seed's filters find them."""
    path = tmp_path / "audit.db"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(
            """
            CREATE TABLE audit_records (
                record_id TEXT PRIMARY KEY, ts REAL NOT NULL, event_type TEXT NOT NULL,
                session_id TEXT, trace_id TEXT NOT NULL, span_id TEXT NOT NULL,
                attributes TEXT NOT NULL, summary TEXT NOT NULL, exported_at REAL
            );
            INSERT INTO audit_records VALUES
                ('r1', 1.0, 'hitl.decision_made', 's1', 'a1', 'b2', '{}', 'decided', NULL),
                ('r2', 2.0, 'agent.switched', 's1', 'a1', 'b2', '{}', 'switched', 3.0);
            """
        )
        db.commit()
    upgraded = AuditLog(path)
    try:
        (decision,) = upgraded.query(event_type="hitl_decision_made")
        assert (decision.record_id, decision.otel_name) == ("r1", n.EVENT_HITL_DECISION_MADE)
        assert [r.record_id for r in upgraded.query(event_type="agent.switched")] == ["r2"]
        assert [r.record_id for r in upgraded.unexported()] == ["r1"]
        assert decision.to_dict()["event_id"] == "r1"
    finally:
        upgraded.close()
