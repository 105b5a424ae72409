"""What a tool is: a name, a JSON schema, an approval policy and an async ``run``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from agent_runtime.tools.workspace import Workspace

__all__ = ["ToolDefinition", "ToolRunner", "ToolSchema"]

ToolRunner = Callable[[Workspace, dict[str, Any]], Awaitable[str]]


class ToolSchema(NamedTuple):
    """What the model is shown about a tool (the OpenAI ``function`` tool fields)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """One server-side tool.

    ``parameters`` is the JSON schema shown to the model and used to validate arguments
    before ``run`` is called (see :func:`~agent_runtime.tools.registry.validate_arguments`).
    ``requires_approval`` tools wait for a human (HITL) first; ``approval_reason`` is what
    the human is told and what ``tool.approval_required`` records. ``run`` returns the text
    result given back to the model and raises a ``ToolError`` subclass on failure.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    requires_approval: bool
    approval_reason: str | None
    run: ToolRunner

    @property
    def schema(self) -> ToolSchema:
        return ToolSchema(self.name, self.description, self.parameters)
