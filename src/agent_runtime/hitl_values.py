"""The values of the human-in-the-loop flow: what was decided (:class:`Resolution`), a
recorded decision (:class:`Decided`), how a waiting stream stops, and the span references a
decision is stored with (the waiting span, the span it was recorded in)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_runtime.store import ApprovalRecord
from telemetry import Decision, HITLDecisionMade, SpanRef, ToolRun

__all__ = [
    "ApprovalsClosed",
    "Decided",
    "Outcome",
    "Resolution",
    "ResumedElsewhere",
    "Waiter",
    "decision_span",
    "ref_text",
    "waiting_span",
]

Outcome = Literal["decided", "timeout"]


class ApprovalsClosed(Exception):
    """The service is shutting down: waiting streams stop, approvals stay pending."""

    code = "shutdown"


class ResumedElsewhere(ApprovalsClosed):
    """The decided run was claimed by another process (this one looked gone): this stream
    stops, the other process runs it."""

    code = "resumed_elsewhere"


@dataclass(frozen=True, slots=True)
class Resolution:
    """What the human (or the timeout) decided for one call."""

    decision: Decision
    arguments: dict[str, Any]
    feedback: str | None
    outcome: Outcome
    wait_s: float

    @property
    def approved(self) -> bool:
        return self.decision != "REJECT"

    @classmethod
    def of(cls, record: ApprovalRecord) -> Resolution:
        """The resolution a decided record stores (for a run resumed from the store)."""
        decision: Decision = "REJECT"
        if record.decision in ("APPROVE", "EDIT"):
            decision = record.decision  # type: ignore[assignment]
        outcome: Outcome = "timeout" if record.outcome == "timeout" else "decided"
        return cls(
            decision,
            record.decided_arguments if record.decided_arguments is not None else record.arguments,
            record.feedback,
            outcome,
            (record.decided_at or record.requested_at) - record.requested_at,
        )


@dataclass(frozen=True, slots=True)
class Decided:
    """A recorded decision: the approval, what was decided, and whether a live stream took
    it (False: no stream waits for it any more; the caller resumes the run); ``remote``: that
    stream is on another replica (the session's run lease is alive), which reports it."""

    record: ApprovalRecord
    resolution: Resolution
    live: bool
    remote: bool = False


@dataclass(slots=True)
class Waiter:
    future: asyncio.Future[Resolution]
    tool_run: ToolRun
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    deciding: bool = False
    """A decision of this process is being recorded: it completes the future itself."""


def waiting_span(record: ApprovalRecord) -> SpanRef:
    """The span that waited for ``record``'s decision, as stored with it."""
    return SpanRef(record.trace_id, record.span_id, record.trace_flags)


def ref_text(ref: SpanRef) -> str:
    """``trace_id-span_id-flags``: a span as one stored value (``decided_in``)."""
    return f"{ref.trace_id}-{ref.span_id}-{ref.trace_flags:02x}"


def decision_span(record: ApprovalRecord) -> SpanRef | None:
    """The span ``record``'s decision was recorded in, when it was stored with it."""
    if not record.decided_in:
        return None
    try:
        trace_id, span_id, flags = record.decided_in.split("-")
        return SpanRef(trace_id, span_id, int(flags, 16))
    except ValueError:
        return None


def decision_event(
    record: ApprovalRecord, resolution: Resolution, *, decided_by: str | None
) -> HITLDecisionMade:
    """The ``hitl.decision_made`` event of ``record``'s decision (built alike by the replica
    that records it and by the one whose stream reports it)."""
    return HITLDecisionMade(
        tool=record.tool,
        call_id=record.call_id,
        decision=resolution.decision,
        modified=resolution.decision == "EDIT",
        wait_s=resolution.wait_s,
        outcome=resolution.outcome,
        feedback=resolution.feedback,
        original_args=record.arguments,
        modified_args=resolution.arguments if resolution.decision == "EDIT" else None,
        session_id=record.session_id,
        decided_by=decided_by,
    )
