"""The values a request streams back: SSE event names and their JSON data (docs/http.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent_runtime.errors import StoreUnavailable
from agent_runtime.llm import ModelError


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of the response stream: an SSE ``event`` name and its JSON ``data``.

    Names: ``meta`` (first), ``agent_switched``, ``text``, ``tool_call``,
    ``approval_required``, ``tool_result``, ``error``, ``done`` (always last).
    """

    event: str
    data: dict[str, Any] = field(default_factory=dict)


def error_event(exc: BaseException) -> StreamEvent:
    """The stream's ``error`` event for a run that failed: a store that stopped answering
    says so (the client may retry, as after a 503); anything else is the agent's failure,
    its details in the trace, never in the stream."""
    if isinstance(exc, StoreUnavailable):
        return StreamEvent("error", {"code": exc.code, "message": exc.message})
    if isinstance(exc, ModelError):
        return StreamEvent(
            "error", {"code": "agent_error", "message": "the model provider failed mid-stream"}
        )
    return StreamEvent(
        "error", {"code": "agent_error", "message": "the agent failed; see the trace for details"}
    )
