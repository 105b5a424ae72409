"""The agents: who each one is, which tools it may call, and to whom it may hand over.

An agent is data, not code: its system prompt, its tools and its handoff targets. The
orchestrator runs any of them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

HANDOFF_PREFIX: Final = "transfer_to_"
ORCHESTRATOR: Final = "orchestrator"


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent. ``handoffs`` become ``transfer_to_<agent>`` tools offered to the model."""

    name: str
    description: str
    tools: tuple[str, ...] = ()
    handoffs: tuple[str, ...] = ()
    model: str | None = None

    @property
    def system_prompt(self) -> str:
        # The scripted model recognises the agent by this first sentence.
        return f"You are the {self.name} agent. {self.description}"

    def handoff_tool(self, target: str) -> str:
        return f"{HANDOFF_PREFIX}{target}"


AGENTS: Final[Mapping[str, AgentSpec]] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            AgentSpec(
                ORCHESTRATOR,
                "Route the user's message to the agent best suited to it; answer with JSON "
                '{"agent", "confidence", "reason"}.',
            ),
            AgentSpec(
                "coder",
                "Write and change code in the workspace; run commands to check it.",
                tools=("read_file", "write_file", "list_files", "execute_command"),
            ),
            AgentSpec(
                "debug",
                "Find the cause of bugs by reading code; hand over to coder for the fix.",
                tools=("read_file", "list_files"),
                handoffs=("coder",),
            ),
            AgentSpec(
                "architect",
                "Discuss design and architecture; read code when needed.",
                tools=("read_file", "list_files"),
            ),
            AgentSpec("ask", "Answer questions about programming."),
        )
    }
)
"""Every agent by name; the orchestrator routes among the others."""

ROUTABLE_AGENTS: Final = tuple(name for name in AGENTS if name != ORCHESTRATOR)


def handoff_target(tool_name: str) -> str | None:
    """The agent a ``transfer_to_<agent>`` tool hands over to, or None for other tools."""
    if tool_name.startswith(HANDOFF_PREFIX):
        target = tool_name.removeprefix(HANDOFF_PREFIX)
        return target if target in AGENTS else None
    return None
