"""The audit outbox (DESIGN §4): durable SQLite first, then OTel log records; resend what the
Collector has not acknowledged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags

import telemetry
from telemetry import names as n
from telemetry.audit import AuditLog, acknowledge
from tests.support.otel import Telemetered

OFF = telemetry.TelemetrySettings()
CONTEXT = SpanContext(0xA1, 0xB2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
OTHER = SpanContext(0xC3, 0xD4, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))


@pytest.fixture
def audit(telemetered: Telemetered, tmp_path: Path) -> Iterator[AuditLog]:
    log = AuditLog(tmp_path / "audit.db")
    yield log
    log.close()


def _write(
    log: AuditLog, event: telemetry.TelemetryEvent, context: SpanContext = CONTEXT
) -> telemetry.AuditRecord:
    return log.write(event, event.attributes(OFF), context)


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
    assert record.event_type == n.EVENT_HITL_DECISION_MADE
    assert record.session_id == "s1"
    assert record.attributes[n.HITL_DECISION] == "APPROVE"
    assert audit.query() == [record]
    (log,) = telemetered.logs()
    assert log.log_record.trace_id == 0xA1
    assert log.log_record.span_id == 0xB2
    attributes = log.log_record.attributes or {}
    assert attributes[n.AUDIT_EVENT_TYPE] == n.EVENT_HITL_DECISION_MADE
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
    assert audit.query(event_type=n.EVENT_SESSION_DELETED) == [a2]
    assert audit.query(session_id="a", event_type=n.EVENT_HITL_DECISION_MADE) == [a1]
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
    (entry,) = logger.get_audit_log(event_type=n.EVENT_SESSION_DELETED, limit=1)
    assert set(entry) == {
        "record_id",
        "timestamp",
        "event_type",
        "session_id",
        "trace_id",
        "span_id",
        "attributes",
        "summary",
    }


def test_resend_unexported_emits_the_same_record_ids(
    audit: AuditLog, telemetered: Telemetered
) -> None:
    written = [_write(audit, _deleted("s1")), _write(audit, _decision("s1", "c1"))]
    assert audit.resend_unexported(older_than_s=0) == 2
    ids = [r.record_id for r in written]
    assert _record_ids(telemetered) == ids + ids
    resent = telemetered.logs()[2:]
    assert [log.log_record.trace_id for log in resent] == [0xA1, 0xA1]


def test_resend_waits_for_older_than(audit: AuditLog, telemetered: Telemetered) -> None:
    _write(audit, _deleted("s1"))
    assert audit.resend_unexported(older_than_s=3600) == 0
    assert len(telemetered.logs()) == 1


def test_acknowledged_records_are_no_longer_resent(
    audit: AuditLog, telemetered: Telemetered
) -> None:
    first = _write(audit, _deleted("s1"))
    second = _write(audit, _deleted("s2"))
    acknowledge([first.record_id, "not-a-record"])
    assert [r.record_id for r in audit.unexported()] == [second.record_id]
    assert audit.resend_unexported(older_than_s=0) == 1
    assert _record_ids(telemetered)[-1] == second.record_id
    acknowledge([second.record_id])
    assert audit.unexported() == []
    assert audit.resend_unexported(older_than_s=0) == 0


def test_a_closed_log_stops_listening_for_acknowledgements(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    log = AuditLog(tmp_path / "audit.db")
    record = _write(log, _deleted("s1"))
    log.close()
    acknowledge([record.record_id])  # must not raise on the closed database
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
        assert hub.resend_audit(older_than_s=0) == 1
        assert len(set(_record_ids(telemetered))) == 1
        assert len(telemetered.logs()) == 2
    finally:
        hub.close()
    assert telemetry.Telemetry(settings=OFF).resend_audit() == 0  # no audit store


def test_hub_resend_audit_follows_the_delivery_state(
    telemetered: Telemetered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from telemetry import audit as audit_module

    hub = telemetry.Telemetry(audit_path=tmp_path / "audit.db")
    try:
        for _ in range(audit_module.RESEND_PROBE + 5):
            hub.emit(
                telemetry.SessionDeleted(session_id="s"),
            )
        monkeypatch.setattr(audit_module, "delivery", audit_module.DeliveryState())
        audit_module.report_failed_delivery()
        assert hub.resend_audit(older_than_s=0) == audit_module.RESEND_PROBE
        audit_module.acknowledge([])
        assert hub.resend_audit(older_than_s=0) == audit_module.RESEND_PROBE + 5
        audit_module.delivery.enabled = False
        assert hub.resend_audit(older_than_s=0) == 0
    finally:
        hub.close()
