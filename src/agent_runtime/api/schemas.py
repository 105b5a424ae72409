"""Request and response bodies of the HTTP contract (docs/http.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from agent_runtime import feedback, sessions
from agent_runtime.store import ApprovalRecord, FeedbackRecord
from telemetry import Decision

SESSION_ID_PATTERN = sessions.SESSION_ID_PATTERN.pattern
AGENT_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error the API answers: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


_ERROR_STATUSES = (
    (400, "Malformed request (e.g. invalid JSON encoding)"),
    (401, "Missing or wrong X-Internal-Auth (when a key is configured)"),
    (404, "Unknown session, approval, trace or route"),
    (409, "Conflict: already decided, expired, or already exists"),
    (413, "Request body over AGENT_RUNTIME_MAX_BODY_BYTES"),
    (422, "The body or a parameter does not fit the schema"),
)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in _ERROR_STATUSES
}
SSE_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    # The route's media type is text/event-stream; its errors are still JSON.
    status: {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for status, description in _ERROR_STATUSES
}


class MessageRequest(BaseModel):
    """A user message for a session (created when unknown); ``agent`` is the user's pick."""

    model_config = ConfigDict(extra="forbid")

    session_id: StrictStr = Field(pattern=SESSION_ID_PATTERN)
    message: StrictStr = Field(min_length=1, max_length=100_000)
    agent: StrictStr | None = Field(
        default=None,
        pattern=AGENT_NAME_PATTERN,
        description="The user's explicit choice: one of the routable agents of the agents file.",
    )


class DecisionRequest(BaseModel):
    """The human's decision on a pending tool call."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    arguments: dict[str, Any] | None = None
    feedback: StrictStr | None = Field(default=None, max_length=4_000)


class CreateSessionRequest(BaseModel):
    """A new session; ``system_prompt``: the session's own instructions, which every model
    call of the session receives after the agent's system prompt."""

    model_config = ConfigDict(extra="forbid")

    session_id: StrictStr | None = Field(default=None, pattern=SESSION_ID_PATTERN)
    system_prompt: StrictStr | None = Field(default=None, min_length=1, max_length=100_000)


class SessionCreated(BaseModel):
    session_id: str
    created_at: str


class ToolCallOut(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any]


class MessageOut(BaseModel):
    """One transcript entry: ``system`` (the session's prompt), ``user``, ``assistant`` (its
    text and ``tool_calls``), ``tool`` (a result, with ``tool_call_id``; ``meta.outcome``),
    ``handoff`` (an agent switch: ``meta`` says from, to, trigger, confidence)."""

    seq: int
    role: str
    content: str | None
    agent: str | None
    created_at: float
    tool_calls: list[ToolCallOut] = []
    tool_call_id: str | None = None
    meta: dict[str, Any] = {}


class FeedbackRequest(BaseModel):
    """A person's rating of the answer given in a trace (docs/feedback.md)."""

    model_config = ConfigDict(extra="forbid")

    score: float = Field(
        ge=feedback.SCORE_MIN,
        le=feedback.SCORE_MAX,
        allow_inf_nan=False,
        strict=True,
        description="0 (worst) to 1 (best): a thumbs up is 1, a thumbs down 0.",
    )
    label: StrictStr | None = Field(
        default=None,
        pattern=feedback.LABEL_PATTERN,
        description="A short token (up, down, correct...): 1-32 letters, digits, _ . : -",
    )
    comment: StrictStr | None = Field(
        default=None,
        max_length=feedback.COMMENT_MAX_LENGTH,
        pattern=r"^[^\x00]*$",
        description="Free text, at most 4,000 characters; exported only with content capture.",
    )
    name: StrictStr = Field(
        default=feedback.DEFAULT_NAME,
        pattern=feedback.NAME_PATTERN,
        description="The evaluation's name (gen_ai.evaluation.name): 1-64 characters.",
    )


class FeedbackOut(BaseModel):
    """A stored rating: on the trace and ``agent.request`` span of the answer it rates."""

    feedback_id: str
    trace_id: str
    span_id: str
    session_id: str
    agent: str | None
    name: str
    score: float
    label: str | None
    comment: str | None
    created_at: str

    @classmethod
    def from_record(cls, record: FeedbackRecord) -> FeedbackOut:
        return cls(
            feedback_id=record.feedback_id,
            trace_id=record.trace_id,
            span_id=record.span_id,
            session_id=record.session_id,
            agent=record.agent,
            name=record.name,
            score=record.score,
            label=record.label,
            comment=record.comment,
            created_at=datetime.fromtimestamp(record.created_at, tz=UTC).isoformat(),
        )


class SessionOut(BaseModel):
    """A session and one page of its transcript: ``messages[0]`` is entry ``offset`` of
    ``total``; ``next_offset`` is where the next page starts (None on the last page).
    ``feedback``: people's ratings of the session's answers, oldest first (the newest 1,000)."""

    session_id: str
    created_at: str
    agent: str | None
    messages: list[MessageOut]
    offset: int
    total: int
    next_offset: int | None
    feedback: list[FeedbackOut] = []


class ApprovalOut(BaseModel):
    """A pending approval as the API shows it (the stored record minus its span ids)."""

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

    @classmethod
    def from_record(cls, record: ApprovalRecord) -> ApprovalOut:
        return cls.model_validate(record, from_attributes=True)


class TimelineEntryOut(BaseModel):
    offset_ms: float
    event: str
    details: str


class TimelineOut(BaseModel):
    trace_id: str
    entries: list[TimelineEntryOut]
