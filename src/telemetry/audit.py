"""The audit trail: committed to SQLite first, then shipped as OTel log records.

The local SQLite file (WAL) is both the outbox and the query source. Records carry an id
that the log record repeats, so re-sending after an outage is idempotent downstream. The log
exporter reports which ids reached the Collector through an :class:`AuditDelivery` (made
with the providers, handed to the exporter and to the outbox); what stays unacknowledged is
sent again by :meth:`AuditLog.resend_unexported`.

Group commit. A commit costs far more CPU than queueing a record, whatever it holds
(``bench/per_audit.py``), so :meth:`AuditLog.write` queues the record in memory and the
queue is committed, in one transaction, at the moments that need it: a durable write
(below), the end of each request (the emit layer calls :meth:`AuditLog.commit` when a
request's trace finishes), a query, :meth:`AuditLog.close`, and at the latest every
:data:`COMMIT_INTERVAL_S` by a background thread ("audit-writer") for records emitted
outside any request. Committing on the caller's thread at those points costs less CPU than
waking a writer thread for every request (its wake-ups and GIL hand-overs cost more than
the batching saves), so an agent run with one approval and four audit records makes one
commit, at the decision.

Shipping. A committed record's log record is emitted by the writer thread at its next
period, with every record committed since: building a log record is the SDK's most
expensive call on this path (``bench/per_run.py``), and the log pipeline batches them
anyway (its processor exports every second), so the requests that commit (a decision, a
request's end) do not pay for it.
:meth:`AuditLog.flush` and :meth:`AuditLog.close` ship at once; past :data:`MAX_UNSHIPPED`
committed records the committing thread ships them (memory stays bounded). Outbox
invariant: a record's log record is emitted only after its row is committed, so nothing is
shipped (or acknowledged) that a crash could still take back.

What a crash can lose. ``write(..., durable=True)`` returns once that record and every
record queued before it are committed, on the caller's thread: the emitter uses it for the
events that acknowledge a human action (a HITL decision, a session delete), so an answer
sent to a human implies its record is on disk. A ``durable=False`` record is committed when
its request ends (or by the next durable write), within :data:`COMMIT_INTERVAL_S` while its
request waits for a human, and later only while commits fail (they are retried, see
below). A ``kill -9`` before that loses such a record and nothing else: it has not been
shipped either, so no downstream store holds a record the local one lacks. A committed
record whose log record a crash kept from being emitted stays unacknowledged in the outbox
and is sent again (:meth:`AuditLog.resend_unexported`). Exiting without ``close`` is a
crash. (``synchronous=NORMAL``: a commit survives the process dying, while an
OS crash or power loss can roll back the last commits.)

Failures. Records are never dropped to bound memory: past ``max_queued`` queued records
(:data:`MAX_QUEUED`) ``write`` commits inline instead (back-pressure). A failed batch commit
is rolled back and its records go back to the head of the queue; the writer thread logs
the error and retries after :data:`RETRY_S`. ``write(durable=False)`` never raises for a
commit failure; ``durable=True``, :meth:`AuditLog.flush` and the queries raise it (the
records stay queued). Only ``write`` after :meth:`AuditLog.close` drops, with an error log.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from opentelemetry._logs import Logger, get_logger
from opentelemetry.trace import SpanContext

from telemetry import names as n
from telemetry._audit_record import (
    AUDIT_TYPES,
    INSERT_RECORD,
    QUERY_RECORDS,
    QUERY_UNEXPORTED,
    SCHEMA,
    UPGRADES,
    AuditRecord,
    audit_type,
    emit_log_record,
    record_from_row,
)
from telemetry.events import Attributes, TelemetryEvent
from telemetry.span_ref import SpanRef, span_context_of

__all__ = [
    "AUDIT_LOGGER",
    "COMMIT_INTERVAL_S",
    "MAX_QUEUED",
    "MAX_UNSHIPPED",
    "RESEND_BATCH",
    "RESEND_PROBE",
    "RETRY_S",
    "AuditDelivery",
    "AuditLog",
    "AuditRecord",
]

_log = logging.getLogger(__name__)


class AuditDelivery:
    """What the log pipeline tells the audit outbox: which records reached the Collector,
    and whether shipping works at all, for the re-send policy.

    One is made with the providers (:func:`telemetry.configure`) and handed to the log
    exporter (which reports) and to the application's outbox (which listens).
    ``enabled`` is False when no log exporter exists (``OTEL_LOGS_EXPORTER=none``, SDK
    disabled): re-sending would only feed a no-op. ``healthy`` is False after a failed
    export: while the Collector is down, re-sending the whole backlog every cycle only
    multiplies drops, so the outbox sends a small probe batch instead.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.healthy = True
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Sequence[str]], None]] = []

    def report_failure(self) -> None:
        """Called by the log exporter when a batch did not reach the Collector."""
        self.healthy = False

    def acknowledge(self, record_ids: Sequence[str]) -> None:
        """Called by the log exporter once a batch reached the Collector."""
        self.healthy = True
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(record_ids)
            except Exception:  # an acknowledgement must never break the exporter thread
                _log.exception("audit acknowledgement failed")

    def listen(self, listener: Callable[[Sequence[str]], None]) -> None:
        """Call ``listener`` with the record ids of every acknowledged batch."""
        with self._lock:
            self._listeners.append(listener)

    def stop_listening(self, listener: Callable[[Sequence[str]], None]) -> None:
        with self._lock:
            self._listeners = [known for known in self._listeners if known != listener]


AUDIT_LOGGER = n.AUDIT_SCOPE
"""The instrumentation scope name of the audit log records."""
RESEND_BATCH = 500
RESEND_PROBE = 20
COMMIT_INTERVAL_S = 0.5
"""The writer thread's period: the longest a non-durable record waits for its commit when
nothing else commits it first (a request's end usually does), and a committed record for
its log record."""
MAX_UNSHIPPED = 1_000
"""Committed records whose log records wait for the writer thread, beyond which the
committing thread emits them itself."""
MAX_QUEUED = 10_000
"""Queued records beyond which ``write`` commits inline (back-pressure) instead of growing
the queue (each queued record holds its row and its attributes), reached only if commits
fall behind or fail."""
RETRY_S = 1.0
"""Pause of the writer thread after a failed batch commit before it tries again."""
_JOIN_TIMEOUT_S = 5.0


class _Pending(NamedTuple):
    """A queued record: its row, and the span context its log record carries."""

    record: AuditRecord
    row: tuple[Any, ...]
    context: SpanContext


class AuditLog:
    """Durable audit outbox over one SQLite file, group-committed; safe from any thread.

    Locks, always taken in this order: ``_commit_lock`` runs one take-commit-emit cycle at a
    time (so a flush or a durable write also waits for the batch the writer thread holds),
    ``_lock`` guards the connection, ``_queued`` guards the queue. Log records are emitted
    outside ``_lock``: an exporter may acknowledge synchronously, which takes ``_lock``.
    """

    def __init__(
        self,
        path: Path,
        *,
        logger: Logger | None = None,
        ship: bool = True,
        commit_interval_s: float = COMMIT_INTERVAL_S,
        max_queued: int = MAX_QUEUED,
        delivery: AuditDelivery | None = None,
    ) -> None:
        """``ship=False``: no log record is emitted (telemetry off: nothing would export it);
        the records wait in the outbox, unacknowledged, for a run that ships them.
        ``delivery``: where the log exporter acknowledges records (the providers' own);
        without one, nothing is ever acknowledged."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._ship = ship
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        _upgrade(self._db)
        self._db_open = True
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._queued = threading.Lock()
        self._queue: list[_Pending] = []
        self._unshipped: deque[_Pending] = deque()  # committed, log record not yet emitted
        self._closed = False
        self._stopping = threading.Event()
        self._commit_interval_s = commit_interval_s
        self._max_queued = max_queued
        self._logger = logger or get_logger(AUDIT_LOGGER)
        self.delivery = delivery if delivery is not None else AuditDelivery()
        self.delivery.listen(self._mark_exported)
        self._writer = threading.Thread(target=self._run_writer, name="audit-writer", daemon=True)
        self._writer.start()

    def write(
        self,
        event: TelemetryEvent,
        attributes: Attributes,
        context: SpanContext | SpanRef,
        *,
        durable: bool = False,
        summary: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Record ``event``; its log record (with ``context`` as its trace) follows the commit,
        from the writer thread. ``context`` may be a stored :class:`~telemetry.SpanRef`.

        ``durable=False`` queues the record for the writer thread and returns at once; it
        never raises for a commit failure. ``durable=True`` commits this record and every
        record queued before it on this thread before returning, for events that
        acknowledge a human action; if that commit fails it raises, and the records stay
        queued to be retried. After :meth:`close` the record is logged and dropped.
        ``summary``: the event's one-line summary, when the caller has formatted it already;
        ``details``: the event's seed fields, kept beside its attributes.
        """
        context = span_context_of(context)
        record = AuditRecord.new(event, attributes, context, summary, details)
        pending = _Pending(record, record.row(), context)
        queued = 0
        with self._queued:
            closed = self._closed
            if not closed and not durable:
                self._queue.append(pending)
                queued = len(self._queue)
        if closed:
            _log.error("audit log closed: record %s (%s) dropped", record.record_id, event.name)
        elif durable:
            self._commit_queued(pending, ship=False)
        elif queued > self._max_queued:
            try:
                self._commit_queued(None, ship=False)
            except Exception:  # the records stay queued; the writer thread retries them
                _log.exception("audit back-pressure commit failed")
        return record

    def commit(self) -> None:
        """Commit everything queued so far, on this thread; the writer thread ships it.

        On return every record written before the call is committed (a batch the writer
        thread holds is finished first). Raises if the commit fails; the records stay queued.
        """
        self._commit_queued(None, ship=False)

    def flush(self) -> None:
        """Commit everything queued so far, on this thread, then emit the log records of
        every committed record not shipped yet.

        On return every record written before the call is committed and its log record
        emitted. Raises if the commit fails; the records stay queued.
        """
        self._commit_queued(None, ship=True)

    def close(self) -> None:
        """Commit what is still queued, stop the writer thread, close the file.

        Safe to call twice; a ``write`` after it is logged and dropped, not raised.
        """
        with self._queued:
            if self._closed:
                return
            self._closed = True
        self._stopping.set()
        self._writer.join(_JOIN_TIMEOUT_S)
        try:
            self.flush()
        except Exception:
            with self._queued:
                lost = len(self._queue)
            _log.exception("audit log closed with %d records not committed", lost)
        self.delivery.stop_listening(self._mark_exported)
        with self._lock:
            self._db_open = False
            self._db.close()

    def query(
        self, *, session_id: str | None = None, event_type: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """The newest ``limit`` records matching the filters, oldest first (queued records
        included: they are committed first). ``event_type`` is a record type, the seed's
        name (``hitl_decision_made``) or the event's OTel name (``hitl.decision_made``).

        "Newest" is the order the records were committed (SQLite's rowid), which is the
        order they were written: reading the table backwards from its end needs no index
        and no sort (``ORDER BY ts`` sorts the whole table, which grows without bound). A
        session's records are found by scanning back from the end."""
        self.commit()
        with self._lock:
            rows = self._db.execute(
                QUERY_RECORDS,
                (session_id, None if event_type is None else audit_type(event_type), max(0, limit)),
            ).fetchall()
        return [record_from_row(row) for row in reversed(rows)]

    def unexported(self, *, older_than_s: float = 0.0, limit: int = -1) -> list[AuditRecord]:
        """The oldest records no exporter has acknowledged yet (the outbox's backlog);
        ``limit`` < 0 means all of them."""
        self.commit()
        cutoff = time.time() - older_than_s
        with self._lock:
            rows = self._db.execute(
                QUERY_UNEXPORTED,
                (cutoff, limit),
            ).fetchall()
        return [record_from_row(row) for row in rows]

    def resend_unexported(self, *, older_than_s: float = 5.0, limit: int = -1) -> int:
        """Emit again the oldest records (at most ``limit``; < 0: all) still unacknowledged
        after ``older_than_s``."""
        records = self.unexported(older_than_s=older_than_s, limit=limit)
        for record in records:
            self._emit_log(record, record.span_ref.context)
        return len(records)

    def _run_writer(self) -> None:
        """The writer thread: every :data:`COMMIT_INTERVAL_S`, commit what is queued and ship
        what is committed; until closed. A failure is logged and retried after
        :data:`RETRY_S`, never ends the thread."""
        while not self._stopping.wait(self._commit_interval_s):
            try:
                self._commit_queued(None, ship=True)
            except Exception:
                _log.exception("audit batch commit failed; retrying in %.1f s", RETRY_S)
                self._stopping.wait(RETRY_S)

    def _commit_queued(self, extra: _Pending | None, *, ship: bool) -> None:
        """Commit the queue (and ``extra`` after it) in one transaction; then, with ``ship``
        or past :data:`MAX_UNSHIPPED`, emit the log records of every committed record not
        shipped yet. On failure the batch goes back to the head of the queue."""
        with self._commit_lock:
            try:
                self._commit_batch(extra)
            finally:  # what earlier commits made durable ships even if this one failed
                if ship or len(self._unshipped) >= MAX_UNSHIPPED:
                    unshipped = self._unshipped
                    while unshipped:
                        pending = unshipped.popleft()
                        self._emit_log(pending.record, pending.context)

    def _commit_batch(self, extra: _Pending | None) -> None:
        """Under ``_commit_lock``: commit the queue (and ``extra``), then queue its records
        for shipping."""
        with self._lock:
            with self._queued:
                batch, self._queue = self._queue, []
            if extra is not None:
                batch.append(extra)
            if not batch:
                return
            if not self._db_open:  # a write that raced close()
                _log.error("audit log closed: %d records dropped", len(batch))
                return
            try:
                self._db.execute("BEGIN")
                self._db.executemany(INSERT_RECORD, [pending.row for pending in batch])
                self._db.execute("COMMIT")
            except BaseException:
                with self._queued:
                    self._queue[:0] = batch
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise
        if self._ship:
            self._unshipped.extend(batch)

    def _emit_log(self, record: AuditRecord, context: SpanContext) -> None:
        if not self._ship:
            return
        try:
            emit_log_record(self._logger, record, context)
        except Exception:  # the record is committed; shipping it again is the outbox's job
            _log.exception("audit log record could not be emitted")

    def _mark_exported(self, record_ids: Sequence[str]) -> None:
        if not record_ids:
            return
        now = time.time()
        with self._lock:
            if not self._db_open:  # an acknowledgement racing close()
                return
            self._db.execute("BEGIN")  # one commit per acknowledged batch, not per record
            try:
                self._db.executemany(
                    "UPDATE audit_records SET exported_at = ? WHERE record_id = ?"
                    " AND exported_at IS NULL",
                    [(now, record_id) for record_id in record_ids],
                )
                self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise


def _upgrade(db: sqlite3.Connection) -> None:
    """Bring a file written before the seed's record shape up to date, in one transaction:
    the new columns, and its records renamed from the OTel event names to the seed's types
    (so the seed's filters find them)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(audit_records)")}
    if "otel_name" in columns and "details" in columns:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in UPGRADES:
            if statement.split(" ADD COLUMN ")[1].split()[0] not in columns:
                db.execute(statement)
        db.executemany(
            "UPDATE audit_records SET otel_name = event_type, event_type = ? WHERE event_type = ?",
            [(seed, otel) for otel, seed in AUDIT_TYPES.items()],
        )
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
