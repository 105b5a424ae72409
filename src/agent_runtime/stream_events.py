"""The values a request streams back: SSE event names and their JSON data (docs/http.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of the response stream: an SSE ``event`` name and its JSON ``data``.

    Names: ``meta`` (first), ``agent_switched``, ``text``, ``tool_call``,
    ``approval_required``, ``tool_result``, ``error``, ``done`` (always last).
    """

    event: str
    data: dict[str, Any] = field(default_factory=dict)
