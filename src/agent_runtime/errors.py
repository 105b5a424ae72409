"""Domain exceptions: what went wrong, in words the api can translate without guessing.

Domain modules (store, sessions, hitl, tools, orchestrator) raise these and never import
FastAPI. Each class carries a machine ``code`` and the HTTP ``status`` the api answers
with, so the api maps the whole family in one handler table::

    {"error": {"code": exc.code, "message": exc.message}}  # with status exc.status

Messages are written for the person reading the API response: they say what was wrong
and, where useful, which id was involved. They never contain secrets, file contents, tool
arguments or raw user input beyond an id the caller already sent.

Tool failures (:class:`ToolError` and its subclasses) normally never reach HTTP: the agent
flow turns them into a failed tool result. They still carry a code (for the tool result and
telemetry ``error.type``) and a 400 status in case one escapes to a handler.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ApprovalAlreadyDecided",
    "ApprovalExpired",
    "ApprovalNotFound",
    "ApprovalPending",
    "CommandNotAllowed",
    "CommandTimeout",
    "DomainError",
    "EditRequiresArguments",
    "InvalidFeedback",
    "InvalidSessionId",
    "InvalidToolArguments",
    "PathOutsideWorkspace",
    "SessionAlreadyExists",
    "SessionBusy",
    "SessionNotFound",
    "StoreUnavailable",
    "ToolError",
    "TraceNotFound",
    "UnknownAgent",
    "UnknownTool",
]


class DomainError(Exception):
    """Base of every domain failure the api knows how to answer.

    Subclasses override ``code``, ``status`` and ``default_message``; raising one without
    a message uses the default, so a bare ``raise SessionNotFound()`` still reads well.
    """

    code: ClassVar[str] = "domain_error"
    status: ClassVar[int] = 400
    default_message: ClassVar[str] = "the request could not be completed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)


# --- sessions ---------------------------------------------------------------------------


class SessionNotFound(DomainError):
    """The session does not exist or was deleted (a soft-deleted session is gone to callers)."""

    code = "session_not_found"
    status = 404
    default_message = "session not found"

    @classmethod
    def for_id(cls, session_id: str) -> SessionNotFound:
        return cls(f"session {session_id!r} not found")


class SessionAlreadyExists(DomainError):
    """A session with this id exists, or existed: ids are never reused after a delete."""

    code = "session_already_exists"
    status = 409
    default_message = "session already exists"

    @classmethod
    def for_id(cls, session_id: str) -> SessionAlreadyExists:
        return cls(f"session {session_id!r} already exists")


class SessionBusy(DomainError):
    """Another agent run of this session is in progress; one runs at a time."""

    code = "session_busy"
    status = 409
    default_message = "the session is busy with another message"

    @classmethod
    def for_id(cls, session_id: str) -> SessionBusy:
        return cls(f"session {session_id!r} is busy with another message; retry when it ends")


class ApprovalPending(DomainError):
    """The session's last run waits for a human decision; a new message would cut it off."""

    code = "approval_pending"
    status = 409
    default_message = "the session waits for an approval"

    @classmethod
    def for_call(cls, session_id: str, call_id: str) -> ApprovalPending:
        return cls(
            f"session {session_id!r} waits for a decision on tool call {call_id!r}; "
            "decide it (APPROVE, EDIT or REJECT) before sending another message"
        )


class UnknownAgent(DomainError):
    """The user asked for an agent that does not exist or cannot be chosen."""

    code = "unknown_agent"
    status = 422
    default_message = "unknown agent"

    @classmethod
    def among(cls, agent: str, choices: tuple[str, ...]) -> UnknownAgent:
        shown = agent if len(agent) <= 64 else agent[:64] + "…"
        return cls(f"agent {shown!r} cannot be chosen; choose one of {', '.join(choices)}")


class InvalidSessionId(DomainError):
    """The id is not acceptable (pattern, length); the message never echoes the raw value."""

    code = "invalid_session_id"
    status = 422
    default_message = (
        "session id must be 1-128 characters of letters, digits, '.', '_', ':' or '-' "
        "and not '.' or '..'"
    )


# --- approvals (raised by hitl) ---------------------------------------------------------


class ApprovalNotFound(DomainError):
    """No approval with this call id was ever requested."""

    code = "approval_not_found"
    status = 404
    default_message = "approval not found"


class ApprovalAlreadyDecided(DomainError):
    """A decision was already recorded; the first decision wins and is final."""

    code = "approval_already_decided"
    status = 409
    default_message = "approval already decided"


class ApprovalExpired(DomainError):
    """The approval's deadline passed (it was rejected with outcome ``timeout``)."""

    code = "approval_expired"
    status = 409
    default_message = "approval expired"


class EditRequiresArguments(DomainError):
    """An EDIT decision must carry the changed arguments."""

    code = "edit_requires_arguments"
    status = 422
    default_message = "an EDIT decision requires arguments"


class InvalidEditArguments(DomainError):
    """An EDIT's arguments do not fit the tool's schema; nothing was recorded."""

    code = "invalid_edit_arguments"
    status = 422
    default_message = "the edited arguments do not fit the tool"


# --- feedback (raised by feedback) -------------------------------------------------------


class TraceNotFound(DomainError):
    """No request of this service ran in that trace (or its session was deleted): there is
    no answer to rate."""

    code = "trace_not_found"
    status = 404
    default_message = "no request of this service ran in that trace"

    @classmethod
    def for_id(cls, trace_id: str) -> TraceNotFound:
        return cls(f"no request of this service ran in trace {trace_id}")


class InvalidFeedback(DomainError):
    """The feedback does not fit its limits (score range, label and comment lengths)."""

    code = "invalid_feedback"
    status = 422
    default_message = "invalid feedback"


# --- the store --------------------------------------------------------------------------


class StoreUnavailable(DomainError):
    """The database does not answer (down, restarting, or its statement timed out): try
    again shortly. Nothing was recorded, or what was is kept; the message never names the
    database's address or credentials."""

    code = "store_unavailable"
    status = 503
    default_message = "the store is unavailable; try again shortly"


# --- tools ------------------------------------------------------------------------------


class ToolError(DomainError):
    """A tool call failed. The agent flow reports it as a failed tool result, not HTTP."""

    code = "tool_failed"
    status = 400
    default_message = "tool failed"


class UnknownTool(ToolError):
    """The model asked for a tool that is not registered."""

    code = "unknown_tool"
    default_message = "unknown tool"


class InvalidToolArguments(ToolError):
    """Arguments failed validation against the tool's schema (checked before running)."""

    code = "invalid_tool_arguments"
    default_message = "invalid tool arguments"


class PathOutsideWorkspace(ToolError):
    """A path escapes the session workspace (``..``, absolute, symlink, NUL byte).

    The message names the reason but not the resolved target, so a refused symlink does not
    reveal where on the host it pointed.
    """

    code = "path_outside_workspace"
    default_message = "path is outside the workspace"


class CommandNotAllowed(ToolError):
    """The command's program is not on the allow-list (or the command line is malformed)."""

    code = "command_not_allowed"
    default_message = "command not allowed"


class CommandTimeout(ToolError):
    """The command ran past its timeout and was killed (with its process group)."""

    code = "command_timeout"
    default_message = "command timed out"
