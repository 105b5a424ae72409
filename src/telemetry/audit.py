"""The audit trail: written to the store first, then shipped as OTel log records.

The store (:class:`~telemetry.outbox.AuditOutbox`: the service's own database, shared by
every process) is both the outbox and the query source. Records carry an id that the log
record repeats, so re-sending after an outage is idempotent downstream. The log exporter
reports which ids reached the Collector through an :class:`AuditDelivery` (made with the
providers); what stays unacknowledged is sent again by :meth:`AuditLog.resend`.

Two ways in. The events that acknowledge a human action (a HITL decision, a session
delete) are written by the store in the same transaction as the change they record: the
caller builds the record (:meth:`AuditLog.build`), hands it to the store with its change,
and reports the commit (:meth:`AuditLog.committed`), so an answer sent to a human implies
its record is stored. Every other audited event is queued (:meth:`AuditLog.write`, cheap,
on the request path) and written by the flusher, a task on the application's event loop,
in one transaction per batch: when a request ends (:meth:`AuditLog.flush_soon`), and at
the latest every :data:`FLUSH_INTERVAL_S`.

Shipping. A record's log record is emitted only after its row is committed (the outbox
invariant: nothing is shipped, or acknowledged, that a crash could still take back), by the
flusher, with every record committed since its last cycle.

What a crash can lose: the queued records not yet written (at most one flush interval's
worth, or more while the store refuses writes). They were not shipped either, so no
downstream store holds a record the service lacks. A written record whose log record a
crash kept from being emitted stays unacknowledged and is sent again.

Failures. A failed batch write puts the batch back at the head of the queue and the
flusher retries at its next cycle. The queue is bounded (:data:`MAX_QUEUED`): while the
store refuses writes for that long (requests that need it fail with 503 meanwhile), the
oldest queued records are dropped, counted and logged, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

from opentelemetry._logs import Logger, get_logger
from opentelemetry.trace import SpanContext

from telemetry import names as n
from telemetry._audit_record import AuditRecord, audit_type, emit_log_record
from telemetry.delivery import AuditDelivery
from telemetry.events import Attributes, TelemetryEvent
from telemetry.outbox import AuditOutbox
from telemetry.span_ref import SpanRef
from telemetry.suppression import suppress_client_spans

__all__ = [
    "FLUSH_INTERVAL_S",
    "MAX_QUEUED",
    "RESEND_BATCH",
    "RESEND_PROBE",
    "AuditDelivery",
    "AuditLog",
    "AuditRecord",
]

_log = logging.getLogger(__name__)

RESEND_BATCH = 500
RESEND_PROBE = 20
FLUSH_INTERVAL_S = 0.5
"""The flusher's period: the longest a queued record waits for its write when no request
end asks for one sooner, and a written record for its log record."""
MAX_QUEUED = 10_000
"""Queued records beyond which the oldest are dropped (and counted) while writes fail."""
CLAIM_LEASE_S = 30.0
"""How long a re-send claim keeps a record from the other processes' re-senders, unless
the caller says: a claim whose process died holds its records back that long."""


class AuditLog:
    """The application's audit trail over the store's outbox; one per application.

    :meth:`start` it on the event loop that serves requests, :meth:`aclose` it there at
    shutdown. ``write``, ``build``, ``committed`` and ``flush_soon`` may be called from any
    thread (the log exporter acknowledges from its own).
    """

    def __init__(
        self,
        outbox: AuditOutbox,
        *,
        logger: Logger | None = None,
        ship: bool = True,
        delivery: AuditDelivery | None = None,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        """``ship=False``: no log record is emitted (telemetry off: nothing would export it);
        the records wait in the outbox, unacknowledged, for a run that ships them."""
        self._outbox = outbox
        self._ship = ship
        self._logger = logger or get_logger(n.AUDIT_SCOPE)
        self._delivery = delivery
        self._flush_interval_s = flush_interval_s
        self._max_queued = max_queued
        self._queue: deque[AuditRecord] = deque()
        self._writing: list[AuditRecord] = []  # taken from the queue, being written
        self._unshipped: deque[AuditRecord] = deque()
        self._acks: deque[Sequence[str]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._cycle_lock: asyncio.Lock | None = None
        self._closed = False
        self.dropped = 0
        """Queued records dropped because the store refused writes for too long."""
        self.owner = uuid.uuid4().hex
        """This trail's name in the store's re-send claims."""
        if delivery is not None:
            delivery.listen(self._acknowledged)

    def start(self) -> None:
        """Start the flusher on the running event loop."""
        if self._flusher is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._cycle_lock = asyncio.Lock()
        self._flusher = self._loop.create_task(self._run(), name="audit-flusher")

    def build(
        self,
        event: TelemetryEvent,
        attributes: Attributes,
        context: SpanContext | SpanRef,
        *,
        summary: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """The record of ``event`` in ``context``'s trace, not queued: for a caller that
        writes it with the change it records, then reports :meth:`committed`."""
        return AuditRecord.new(event, attributes, context, summary, details)

    def write(
        self,
        event: TelemetryEvent,
        attributes: Attributes,
        context: SpanContext | SpanRef,
        *,
        summary: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Queue the record of ``event`` for the flusher; returns at once, never raises.
        After :meth:`aclose` the record is logged and dropped."""
        record = AuditRecord.new(event, attributes, context, summary, details)
        if self._closed:
            _log.error("audit trail closed: record %s (%s) dropped", record.record_id, event.name)
            return record
        if len(self._queue) >= self._max_queued:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                _log.error(
                    "the store refuses audit writes: %d queued records dropped so far",
                    self.dropped,
                )
        self._queue.append(record)
        return record

    def committed(self, records: Sequence[AuditRecord]) -> None:
        """The caller's transaction stored ``records``: ship them."""
        if self._ship:
            self._unshipped.extend(records)
        self.flush_soon()

    def flush_soon(self) -> None:
        """Ask the flusher for a cycle now (a request ended); a no-op before :meth:`start`."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def flush(self) -> None:
        """Write everything queued so far, then emit the log records of everything written
        and not shipped yet. Raises if the write fails (the records stay queued)."""
        await self._cycle(raise_errors=True)

    async def resend(
        self, *, older_than_s: float, limit: int, lease_s: float = CLAIM_LEASE_S
    ) -> int:
        """Emit again the oldest records still unacknowledged after ``older_than_s``
        (claimed first, so no other process ships them at the same moment)."""
        if not self._ship:
            return 0
        now = time.time()
        with suppress_client_spans():  # the outbox's own traffic, not a request's
            records = await self._outbox.claim_unshipped(
                owner=self.owner,
                stored_before=now - older_than_s,
                limit=limit,
                lease_s=lease_s,
                now=now,
            )
        for record in records:
            self._emit(record)
        return len(records)

    async def query(
        self, *, session_id: str | None = None, event_type: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """The newest ``limit`` records matching the filters, oldest first, queued records
        included (written first). ``event_type``: the seed's name or the OTel event name."""
        await self._write_queued(raise_errors=False)
        kind = None if event_type is None else audit_type(event_type)
        stored = await self._outbox.query_audit(session_id=session_id, event_type=kind, limit=limit)
        return self._with_queued(stored, session_id, kind, limit)

    def query_blocking(
        self, *, session_id: str | None = None, event_type: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """:meth:`query` for a caller that cannot await (it blocks its thread for the read);
        the records still queued are included from memory."""
        kind = None if event_type is None else audit_type(event_type)
        stored = self._outbox.query_audit_blocking(
            session_id=session_id, event_type=kind, limit=limit
        )
        return self._with_queued(stored, session_id, kind, limit)

    async def backlog(self) -> int:
        """Records not acknowledged by the Collector yet: stored ones and queued ones."""
        return await self._outbox.count_unshipped() + len(self._queue)

    async def aclose(self) -> None:
        """Write what is still queued, ship it, stop the flusher. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._delivery is not None:
            self._delivery.stop_listening(self._acknowledged)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        try:
            await self._cycle(raise_errors=True)
        except Exception:
            _log.exception("audit trail closed with %d records not written", len(self._queue))

    def _with_queued(
        self,
        stored: list[AuditRecord],
        session_id: str | None,
        event_type: str | None,
        limit: int,
    ) -> list[AuditRecord]:
        seen = {record.record_id for record in stored}
        queued = [
            record
            for record in [*self._writing, *self._queue]
            if record.record_id not in seen and record.matches(session_id, event_type)
        ]
        merged = stored + queued
        return merged[-limit:] if limit > 0 else []

    def _acknowledged(self, record_ids: Sequence[str]) -> None:
        if record_ids:
            self._acks.append(list(record_ids))
            self.flush_soon()

    async def _run(self) -> None:
        """The flusher: a cycle every :data:`FLUSH_INTERVAL_S`, or sooner when asked; a
        failure is logged and retried next cycle, never ends the task."""
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._cycle(raise_errors=False)
            except Exception:
                _log.exception("audit flush failed; retrying next cycle")

    async def _cycle(self, *, raise_errors: bool) -> None:
        """Write the queue, ship what is written, record the acknowledgements."""
        lock = self._cycle_lock
        if lock is None:  # never started: flushing from the caller's loop
            lock = self._cycle_lock = asyncio.Lock()
        async with lock:
            try:
                await self._write_queued(raise_errors=raise_errors)
            finally:  # what earlier writes made durable ships even if this one failed
                while self._unshipped:
                    self._emit(self._unshipped.popleft())
                await self._record_acks(raise_errors=raise_errors)

    async def _write_queued(self, *, raise_errors: bool) -> None:
        batch: list[AuditRecord] = []
        while self._queue:
            batch.append(self._queue.popleft())
        if not batch:
            return
        self._writing = batch
        try:
            with suppress_client_spans():
                await self._outbox.write_audit(batch)
        except Exception:
            self._queue.extendleft(reversed(batch))
            if raise_errors:
                raise
            _log.warning("audit records not written (%d queued); retrying", len(self._queue))
            return
        except BaseException:  # cancelled mid-write: the batch is written again later
            self._queue.extendleft(reversed(batch))
            raise
        finally:
            self._writing = []
        if self._ship:
            self._unshipped.extend(batch)

    async def _record_acks(self, *, raise_errors: bool) -> None:
        ids: list[str] = []
        while self._acks:
            ids.extend(self._acks.popleft())
        if not ids:
            return
        try:
            with suppress_client_spans():
                await self._outbox.acknowledge_audit(ids, at=time.time())
        except Exception:
            self._acks.appendleft(ids)
            if raise_errors:
                raise
            _log.warning("audit acknowledgements not recorded; retrying")

    def _emit(self, record: AuditRecord) -> None:
        if not self._ship:
            return
        try:
            emit_log_record(self._logger, record)
        except Exception:  # the record is stored; shipping it again is the outbox's job
            _log.exception("audit log record could not be emitted")
