"""The values the store keeps: plain frozen dataclasses, independent of any database.

Every implementation of :class:`~agent_runtime.store.Store` takes and returns exactly these,
so callers never see rows, cursors or driver types. Times are epoch seconds (``float``) so
they compare and subtract without time-zone questions; formatting is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ApprovalRecord",
    "ApprovalStatus",
    "FeedbackRecord",
    "MessageRecord",
    "MessageRole",
    "RequestRecord",
    "SessionRecord",
]

MessageRole = Literal["system", "user", "assistant", "tool", "handoff"]
"""``handoff`` entries record an agent switch in the transcript (who handed over to whom,
and why); they are shown with the conversation but never sent to the model."""
ApprovalStatus = Literal["pending", "decided"]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One session. ``deleted_at`` is set by a soft delete; such a session is gone to callers."""

    session_id: str
    created_at: float
    agent: str | None = None
    deleted_at: float | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One entry of a session's transcript, in the OpenAI chat message shape.

    ``tool_calls`` (assistant messages) is a list of ``{"id", "name", "arguments"}`` dicts,
    stored as JSON; ``tool_call_id`` links a ``tool`` message to the call it answers;
    ``meta`` holds what a ``handoff`` entry says (from, to, trigger, reason, confidence) and
    a tool result's outcome. ``seq`` is the store's position of the entry (0 until stored):
    entries are read back in that order.
    """

    session_id: str
    role: str
    content: str | None
    agent: str | None
    created_at: float
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_call_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """A tool call waiting for (or answered by) a human.

    It keeps the waiting ``execute_tool`` span's context (``trace_id`` 32 hex, ``span_id``
    16 hex, ``trace_flags``) so a decision that arrives after the stream went away, or after
    a restart, can still link to the trace that asked. A paused run is this record plus the
    session's transcript: the pending call is one of the ``tool_calls`` of the transcript's
    last assistant message.
    """

    call_id: str
    session_id: str
    tool: str
    arguments: dict[str, Any]
    agent: str
    reason: str
    timeout_s: float
    requested_at: float
    deadline: float
    trace_id: str
    span_id: str
    trace_flags: int
    status: ApprovalStatus = "pending"
    decision: str | None = None
    decided_arguments: dict[str, Any] | None = None
    feedback: str | None = None
    outcome: str | None = None
    decided_at: float | None = None
    decided_by: str | None = None
    resumed_by: str | None = None
    """Who resumed the run after the decision (a claim: exactly one does)."""
    decided_in: str | None = None
    """The ``hitl.decision`` span the decision was recorded in, as ``trace_id-span_id-flags``
    (32, 16 and 2 hex digits): the replica whose stream waited links its event to it."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A request the service served (one user message, or a run resumed after a decision):
    its trace and its ``agent.request`` span (``trace_id`` 32 hex, ``span_id`` 16 hex,
    ``trace_flags``), so that feedback given later, maybe after a restart, lands in that
    trace under that span; its session, the agent that answered last, and how it ended."""

    trace_id: str
    span_id: str
    trace_flags: int
    session_id: str
    agent: str | None
    outcome: str
    ended_at: float


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A person's rating of one answer: ``score`` in [0, 1], an optional ``label`` and
    ``comment``, under the evaluation's ``name``; on the request's trace and
    ``agent.request`` span, in its session, for the agent that answered."""

    feedback_id: str
    trace_id: str
    span_id: str
    session_id: str
    agent: str | None
    name: str
    score: float
    label: str | None
    comment: str | None
    created_at: float
