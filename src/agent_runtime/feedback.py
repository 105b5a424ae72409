"""People's feedback on the service's answers, recorded on the answer's own trace.

Every request the service serves is remembered when it ends (:meth:`FeedbackService.served`:
its trace id, which every response carries as its correlation id, and its ``agent.request``
span, stored in the store), so a rating that arrives later, after a restart or on another
replica, lands in that trace, under that span. A rating (:meth:`FeedbackService.rate`) is
stored with its audit record in one transaction, then emitted as the GenAI conventions'
``gen_ai.evaluation.result`` event (:class:`telemetry.FeedbackGiven`): the log record in the
evaluated trace, the score histogram, ``get_metrics()``'s ``feedback`` counts and the
subscribers all follow from that one call.

The limits are the contract's (the API's schema repeats them):

- ``score``: a number in [0, 1], 1 the best (a thumbs up is 1, a thumbs down 0);
- ``label``: optional, 1-32 characters of letters, digits, ``_ . : -`` (a low-cardinality
  token, "up", "down", "correct": the score histogram is broken down by it);
- ``comment``: optional free text, at most 4,000 characters, no NUL character; content:
  exported only with content capture on, scrubbed and truncated;
- ``name``: the evaluation's name, 1-64 characters like a label, ``user_feedback`` by default.

A trace may be rated any number of times; each rating is its own record. A trace the service
never served (or served before this release remembered requests, or whose session was
deleted) has no answer to rate: :class:`~agent_runtime.errors.TraceNotFound`.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable
from typing import Final

from agent_runtime.errors import InvalidFeedback, TraceNotFound
from agent_runtime.store import FeedbackRecord, RequestRecord, Store
from telemetry import EventSink, FeedbackGiven, SpanRef

__all__ = [
    "COMMENT_MAX_LENGTH",
    "DEFAULT_NAME",
    "LABEL_PATTERN",
    "NAME_PATTERN",
    "SCORE_MAX",
    "SCORE_MIN",
    "SESSION_FEEDBACK_LIMIT",
    "TRACE_ID_PATTERN",
    "FeedbackService",
    "check_feedback",
]

SCORE_MIN: Final = 0.0
SCORE_MAX: Final = 1.0
DEFAULT_NAME: Final = "user_feedback"
NAME_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,64}$"
LABEL_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,32}$"
COMMENT_MAX_LENGTH: Final = 4000
TRACE_ID_PATTERN: Final = r"^[0-9a-fA-F]{32}$"
SESSION_FEEDBACK_LIMIT: Final = 1000
"""How many of a session's ratings (the newest) its read returns."""

_NAME = re.compile(NAME_PATTERN)
_LABEL = re.compile(LABEL_PATTERN)
_TRACE_ID = re.compile(TRACE_ID_PATTERN)
_NO_TRACE = "0" * 32


def check_feedback(score: float, label: str | None, comment: str | None, name: str) -> None:
    """Refuse feedback outside the limits (``InvalidFeedback``); the API checks the same
    limits first, this keeps every other caller to them."""
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise InvalidFeedback("score must be a number")
    if not SCORE_MIN <= score <= SCORE_MAX:
        raise InvalidFeedback(f"score must be between {SCORE_MIN:g} and {SCORE_MAX:g}")
    if not _NAME.fullmatch(name):
        raise InvalidFeedback("name must be 1-64 letters, digits, '_', '.', ':' or '-'")
    if label is not None and not _LABEL.fullmatch(label):
        raise InvalidFeedback("label must be 1-32 letters, digits, '_', '.', ':' or '-'")
    if comment is not None and (len(comment) > COMMENT_MAX_LENGTH or "\x00" in comment):
        raise InvalidFeedback(
            f"comment must be at most {COMMENT_MAX_LENGTH} characters, without NUL"
        )


class FeedbackService:
    """Remembers the requests served and records people's ratings of their answers.

    ``events`` must follow the telemetry ``EventSink`` contract; ``clock`` stamps the records
    (tests pass a fixed one).
    """

    def __init__(
        self, store: Store, events: EventSink, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock

    async def served(
        self, request: SpanRef, *, session_id: str, agent: str | None, outcome: str
    ) -> None:
        """Remember a request that ran (its finaliser calls this before the stream's
        ``done``, so a client that read ``done`` can rate the answer at once). A request
        without a trace of its own (the all-zero reference) cannot be rated, and is not kept."""
        if not request.is_valid:
            return
        await self._store.record_request(
            RequestRecord(
                trace_id=request.trace_id,
                span_id=request.span_id,
                trace_flags=request.trace_flags,
                session_id=session_id,
                agent=agent,
                outcome=outcome,
                ended_at=self._clock(),
            )
        )

    async def rate(
        self,
        trace_id: str,
        *,
        score: float,
        label: str | None = None,
        comment: str | None = None,
        name: str = DEFAULT_NAME,
    ) -> FeedbackRecord:
        """Record a rating of the answer given in ``trace_id`` (the correlation id its
        response carried) and emit it in that trace; returns it as stored.

        Raises ``InvalidFeedback`` outside the limits, ``TraceNotFound`` when no request of
        this service ran in that trace (its session deleted included).
        """
        check_feedback(score, label, comment, name)
        if not _TRACE_ID.fullmatch(trace_id) or trace_id.lower() == _NO_TRACE:
            raise TraceNotFound()
        served = await self._store.get_request(trace_id.lower())
        if served is None:
            raise TraceNotFound.for_id(trace_id.lower())
        record = FeedbackRecord(
            feedback_id=uuid.uuid4().hex,
            trace_id=served.trace_id,
            span_id=served.span_id,
            session_id=served.session_id,
            agent=served.agent,
            name=name,
            score=float(score) + 0.0,  # + 0.0: -0.0 is stored as 0.0
            label=label,
            comment=comment,
            created_at=self._clock(),
        )
        event = FeedbackGiven(
            feedback_id=record.feedback_id,
            evaluation=name,
            score=record.score,
            label=label,
            comment=comment,
            agent=served.agent,
            session_id=served.session_id,
        )
        evaluated = SpanRef(served.trace_id, served.span_id, served.trace_flags)
        audit = self._events.audit_record(event, origin=evaluated)
        await self._store.insert_feedback(record, audit=() if audit is None else (audit,))
        self._events.emit(event, origin=evaluated, audit_record=audit)
        return record

    async def of_session(self, session_id: str) -> list[FeedbackRecord]:
        """The session's ratings, oldest first (the newest :data:`SESSION_FEEDBACK_LIMIT`)."""
        return await self._store.list_feedback(session_id, limit=SESSION_FEEDBACK_LIMIT)
