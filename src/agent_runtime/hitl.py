"""Human-in-the-loop approvals: hold a risky tool call until a person decides.

A pending approval is stored durably with the span context of the ``execute_tool`` span
that waits for it, so it survives a disconnect or a restart, and a decision that arrives
later (in another request, maybe another process) can be linked back to that span. While
the stream that asked is alive, it waits here on a future; a decision completes the future
and lands its event on the waiting span. Without a live waiter the decision is still
recorded and audited, and the caller resumes the paused run (exactly one caller does:
:meth:`HITLManager.claim_resume` is a compare-and-set in the store).

Replicas: a decision may arrive on another replica than the stream's, which finds it by
wake-ups and polls of the row (:mod:`agent_runtime.hitl_wait`). The deciding replica
records the decision (and its audit record, and the ``hitl.decision`` span it was recorded
in) and, when the session's run lease is alive (the stream's replica is there), leaves the
rest to that replica: the stream claims the run, emits the decision's event on its waiting
span, linked to the decision's span, and goes on. Counted once, audited once.

A REJECT, and an approval timeout (REJECT with outcome ``timeout``), are outcomes, not
errors.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from agent_runtime.errors import (
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    EditRequiresArguments,
    InvalidEditArguments,
    ToolError,
)
from agent_runtime.hitl_values import (
    ApprovalsClosed,
    Decided,
    Resolution,
    ResumedElsewhere,
    Waiter,
    decision_event,
    decision_span,
    ref_text,
    waiting_span,
)
from agent_runtime.hitl_wait import until_decided
from agent_runtime.store import ApprovalRecord, Store
from agent_runtime.store.signals import DecisionSignals, LocalSignals
from telemetry import (
    AuditRecord,
    Decision,
    EventSink,
    HITLApprovalRequested,
    HITLDecisionMade,
    Span,
    SpanFactory,
    SpanRef,
    ToolApprovalRequired,
    ToolRun,
)

__all__ = [
    "ApprovalsClosed",
    "Decided",
    "Decision",
    "HITLManager",
    "Resolution",
    "ResumedElsewhere",
    "waiting_span",
]


class HITLManager:
    """Stores pending approvals, waits for decisions, and records them."""

    def __init__(
        self,
        store: Store,
        events: EventSink,
        spans: SpanFactory,
        *,
        timeout_s: float,
        validate_arguments: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
        signals: DecisionSignals | None = None,
        poll_s: float = 2.0,
    ) -> None:
        """``validate_arguments(tool, arguments)`` checks a human's EDIT before it is
        recorded (raising ToolError); without it EDITs are checked only when the tool runs.
        ``spans`` opens the ``hitl.decision`` span a decision is recorded in. ``signals``:
        the wake-ups of decisions made by other replicas (default: this process's only);
        ``poll_s``: how often a waiter reads its row without one (a lost wake-up costs at
        most that)."""
        self._signals: DecisionSignals = signals if signals is not None else LocalSignals()
        self._poll_s = poll_s
        self._validate_arguments = validate_arguments
        self._store = store
        self._events = events
        self._spans = spans
        self._timeout_s = timeout_s
        self._clock = clock
        self._waiters: dict[str, Waiter] = {}
        self.owner = uuid.uuid4().hex
        """This manager's name in the store's resume claims."""

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    async def request(
        self,
        *,
        call_id: str,
        session_id: str,
        tool: str,
        arguments: dict[str, Any],
        agent: str,
        reason: str,
        tool_run: ToolRun,
    ) -> ApprovalRecord:
        """Store the pending approval and start waiting for it; emits the approval events."""
        now = self._clock()
        ref = tool_run.span_ref
        record = ApprovalRecord(
            call_id=call_id,
            session_id=session_id,
            tool=tool,
            arguments=arguments,
            agent=agent,
            reason=reason,
            timeout_s=self._timeout_s,
            requested_at=now,
            deadline=now + self._timeout_s,
            trace_id=ref.trace_id,
            span_id=ref.span_id,
            trace_flags=ref.trace_flags,
        )
        await self._store.insert_approval(record)
        self._waiters[call_id] = Waiter(asyncio.get_running_loop().create_future(), tool_run)
        span = tool_run.span
        self._events.emit(
            ToolApprovalRequired(
                tool=tool,
                call_id=call_id,
                reason=reason,
                arguments=arguments,
                session_id=session_id,
            ),
            span=span,
        )
        self._events.emit(
            HITLApprovalRequested(
                tool=tool, call_id=call_id, timeout_s=self._timeout_s, session_id=session_id
            ),
            span=span,
        )
        return record

    async def wait(self, record: ApprovalRecord) -> Resolution:
        """Wait for the decision; at the deadline the call is REJECTed (outcome timeout).

        Raises :class:`ApprovalsClosed` when the service shuts down first; the approval
        then stays pending in the store.
        """
        waiter = self._waiters.get(record.call_id)
        if waiter is None:
            raise ApprovalNotFound(f"no live waiter for approval {record.call_id}")
        remaining = max(0.0, record.deadline - self._clock())
        watch = self._signals.watch(record.call_id)  # before the row is read: none is missed
        try:
            try:
                async with asyncio.timeout(remaining):
                    decided = await until_decided(
                        self._store, record.call_id, waiter, watch, poll_s=self._poll_s
                    )
            except TimeoutError:
                return await self._time_out(record, waiter)
            if decided is None:  # decided in this process: the future has it
                return waiter.future.result()
            return await self._decided_elsewhere(decided, waiter)
        finally:
            watch.close()
            self._waiters.pop(record.call_id, None)

    async def _decided_elsewhere(self, record: ApprovalRecord, waiter: Waiter) -> Resolution:
        """Another replica recorded (and audited) the decision: this stream claims the run,
        and reports the decision on its waiting span, linked to the span it was recorded
        in; :class:`ResumedElsewhere` when another process claimed the run first."""
        if not await self._store.claim_resume(record.call_id, self.owner, now=self._clock()):
            raise ResumedElsewhere(f"the run of {record.call_id!r} resumed in another process")
        resolution = Resolution.of(record)
        decided = decision_span(record)
        if decided is not None:
            waiter.tool_run.link(decided)
        event = decision_event(record, resolution, decided_by=record.decided_by)
        self._events.emit(
            event, span=waiter.tool_run.span, origin=waiting_span(record), sinks="telemetry"
        )
        return resolution

    def release(self, call_id: str) -> None:
        """The stream that asked went away before (or while) waiting: nobody waits here any
        more; the approval stays pending durably. Idempotent."""
        waiter = self._waiters.pop(call_id, None)
        if waiter is not None and not waiter.future.done():
            waiter.future.cancel()

    def waiting_here(self, call_id: str) -> bool:
        """Whether a live stream in this process waits for ``call_id``'s decision."""
        waiter = self._waiters.get(call_id)
        return waiter is not None and not waiter.future.done()

    async def decide(
        self,
        call_id: str,
        decision: Decision,
        *,
        arguments: dict[str, Any] | None = None,
        feedback: str | None = None,
        decided_by: str | None = None,
    ) -> Decided:
        """Record a human decision.

        Raises ApprovalNotFound, ApprovalAlreadyDecided, EditRequiresArguments,
        InvalidEditArguments or ApprovalExpired; nothing is recorded then, except that an
        approval found past its deadline is recorded as timed out first.
        """
        record = await self._store.get_approval(call_id)
        if record is None:
            raise ApprovalNotFound(f"no approval with call id {call_id!r}")
        if record.status != "pending":
            raise ApprovalAlreadyDecided(f"approval {call_id!r} was already decided")
        if decision == "EDIT" and not arguments:
            raise EditRequiresArguments("an EDIT decision needs the modified 'arguments'")
        if decision == "EDIT" and arguments and self._validate_arguments is not None:
            try:
                arguments = self._validate_arguments(record.tool, arguments)
            except ToolError as exc:
                raise InvalidEditArguments(str(exc)) from exc
        now = self._clock()
        if now > record.deadline and not self.waiting_here(call_id):
            await self.expire(record)
            raise ApprovalExpired(f"approval {call_id!r} timed out before the decision")
        final_arguments = dict(arguments) if decision == "EDIT" and arguments else record.arguments
        resolution = Resolution(
            decision, final_arguments, feedback, "decided", now - record.requested_at
        )
        remote = not self.waiting_here(call_id) and await self._store.run_lease_alive(
            record.session_id, now=now
        )
        with self._spans.decision(call_id, record.tool, waiting=waiting_span(record)) as span:
            waiter = self._live_waiter(call_id)
            if waiter is not None:
                waiter.deciding = True  # its stream leaves the future to this call
            try:
                stored = await self._store_decision(
                    record,
                    resolution,
                    now,
                    decided_by=decided_by,
                    decided_in=ref_text(SpanRef.of(span)),
                )
            except BaseException:
                self._not_deciding(waiter, call_id)
                raise
            if stored is None:
                self._not_deciding(waiter, call_id)
                raise ApprovalAlreadyDecided(f"approval {call_id!r} was already decided")
            event, audit = stored
            waiter = self._live_waiter(call_id)
            if waiter is not None:
                self._emit(event, audit, record, span=waiter.tool_run.span)
                waiter.future.set_result(resolution)
                return Decided(record, resolution, live=True)
            if remote:  # the waiting replica reports it; this one ships the stored record
                origin = waiting_span(record)
                self._events.emit(event, origin=origin, audit_record=audit, sinks="audit")
                return Decided(record, resolution, live=True, remote=True)
            self._emit(event, audit, record, span=span)
        return Decided(record, resolution, live=False)

    def _live_waiter(self, call_id: str) -> Waiter | None:
        waiter = self._waiters.get(call_id)
        return waiter if waiter is not None and not waiter.future.done() else None

    def _not_deciding(self, waiter: Waiter | None, call_id: str) -> None:
        """This process's decision was not recorded: its stream reads the row again."""
        if waiter is not None:
            waiter.deciding = False
        self._signals.wake(call_id)

    async def expire(self, record: ApprovalRecord) -> Resolution | None:
        """Time out a pending approval no stream waits for (REJECT, outcome ``timeout``),
        in a ``hitl.decision`` span of the current trace; None when it was decided first."""
        now = self._clock()
        resolution = Resolution(
            "REJECT", record.arguments, None, "timeout", now - record.requested_at
        )
        stored = await self._store_decision(record, resolution, now)
        if stored is None:
            return None
        waiting = waiting_span(record)
        with self._spans.decision(record.call_id, record.tool, waiting=waiting) as span:
            self._emit(*stored, record, span=span)
        return resolution

    async def claim_resume(self, call_id: str) -> bool:
        """Claim the right to resume the decided call's run; exactly one claimant wins,
        across processes sharing the store."""
        return await self._store.claim_resume(call_id, self.owner, now=self._clock())

    async def pending(self, session_id: str | None = None) -> list[ApprovalRecord]:
        return await self._store.list_pending_approvals(session_id)

    async def expired(self, limit: int = 50) -> list[ApprovalRecord]:
        """Pending approvals past their deadline that no stream waits for, in this process
        or another (whose live run lease says it times them out itself)."""
        now = self._clock()
        records = await self._store.list_expired_approvals(now, limit)
        return [
            r
            for r in records
            if not self.waiting_here(r.call_id)
            and not await self._store.run_lease_alive(r.session_id, now=now)
        ]

    async def unresumed(self, *, older_than_s: float, limit: int = 50) -> list[ApprovalRecord]:
        """Decided approvals whose run nobody resumed, decided more than ``older_than_s``
        ago (the deciding process died first), that no stream of this process waits for."""
        records = await self._store.list_unresumed_decisions(self._clock() - older_than_s, limit)
        return [r for r in records if not self.waiting_here(r.call_id)]

    def close(self) -> None:
        """Shutdown: every waiting stream ends (ApprovalsClosed); approvals stay pending."""
        for waiter in list(self._waiters.values()):
            if not waiter.future.done():
                waiter.future.set_exception(ApprovalsClosed("the service is shutting down"))
        self._waiters.clear()

    async def _time_out(self, record: ApprovalRecord, waiter: Waiter) -> Resolution:
        now = self._clock()
        resolution = Resolution(
            "REJECT", record.arguments, None, "timeout", now - record.requested_at
        )
        stored = await self._store_decision(record, resolution, now)
        if stored is None:  # a decision raced the deadline and won
            if waiter.deciding or waiter.future.done():  # this process's: its future says
                return await asyncio.shield(waiter.future)
            decided = await self._store.get_approval(record.call_id)
            if decided is None:
                return resolution
            return await self._decided_elsewhere(decided, waiter)
        self._emit(*stored, record, span=waiter.tool_run.span)
        return resolution

    async def _store_decision(
        self,
        record: ApprovalRecord,
        resolution: Resolution,
        decided_at: float,
        *,
        decided_by: str | None = None,
        decided_in: str | None = None,
    ) -> tuple[HITLDecisionMade, AuditRecord | None] | None:
        """Record ``resolution`` (a compare-and-set on the pending approval) and its audit
        record in one transaction; None when the approval was decided first."""
        event = decision_event(record, resolution, decided_by=decided_by)
        audit = self._events.audit_record(event, origin=waiting_span(record))
        won = await self._store.record_decision(
            record.call_id,
            decision=resolution.decision,
            arguments=resolution.arguments if resolution.decision == "EDIT" else None,
            feedback=resolution.feedback,
            outcome=resolution.outcome,
            decided_at=decided_at,
            decided_by=decided_by,
            audit=(audit,) if audit is not None else (),
            decided_in=decided_in,
        )
        return (event, audit) if won else None

    def _emit(
        self,
        event: HITLDecisionMade,
        audit: AuditRecord | None,
        record: ApprovalRecord,
        *,
        span: Span,
    ) -> None:
        """The decision's span event, metrics and subscribers; its audit record is already
        stored with the decision, so it is only shipped."""
        self._events.emit(event, span=span, origin=waiting_span(record), audit_record=audit)
