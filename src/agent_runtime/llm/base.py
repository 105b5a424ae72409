"""The model interface every provider implements, and the values that cross it.

Agents talk to models only through :class:`ChatModel`. Both providers (the offline
scripted model and any OpenAI-compatible endpoint) stream through the official ``openai``
client, so the SSE chunk parsing and ``tool_calls`` assembly are the same code path
whichever provider is configured; :class:`~agent_runtime.llm.stream.LLMStreamService` turns
each call into a ``chat <model>`` span from what crosses this interface.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for, with its arguments already parsed from JSON."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation sent to the model (OpenAI chat message shape)."""

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model: name, description and JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of assistant text, streamed as it arrives."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """A complete tool call, emitted once all of its streamed argument fragments arrived."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one model call, from the final chunk."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """What the provider said about its answer: its id, the model that answered (it may
    differ from the one requested), and why each choice stopped."""

    response_id: str | None
    response_model: str | None
    finish_reasons: tuple[str, ...]


ModelEvent = TextDelta | ToolCallRequest | ResponseInfo | Usage


class ModelError(Exception):
    """The provider failed (HTTP error, broken stream, malformed chunk): a real failure."""


class ChatModel(Protocol):
    """A streaming chat model.

    ``stream`` yields text deltas as they arrive, each tool call once complete, then the
    :class:`ResponseInfo` and the usage last. It raises :class:`ModelError` when the
    provider fails mid-stream. ``model`` asks for another model of the same provider for
    this call (an agent declared with a model of its own); None means :attr:`model_name`.
    """

    @property
    def model_name(self) -> str:
        """The model requested (``gen_ai.request.model``)."""
        ...

    @property
    def provider_name(self) -> str:
        """The provider, a ``gen_ai.provider.name`` value such as ``openai``."""
        ...

    @property
    def server_address(self) -> str | None:
        """The endpoint's host (``server.address``), when there is one."""
        ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        model: str | None = None,
    ) -> AsyncIterator[ModelEvent]: ...
