"""The model layer's front door: the :class:`ChatModel` interface and its two providers.

Usage::

    from agent_runtime.llm import ChatMessage, create_model

    model = create_model("scripted")            # offline, deterministic (the default)
    model = create_model("openai", model="gpt-4o-mini", base_url=..., api_key=...)
    async for event in model.stream([ChatMessage("user", "hi")], tools=[]):
        ...  # TextDelta | ToolCallRequest | ResponseInfo | Usage

Both providers stream through the official ``openai`` client (the scripted one through an
in-process transport), so they share one code path; the ``chat <model>`` spans come from
:class:`~agent_runtime.llm.stream.LLMStreamService`, whichever provider answers.
"""

from __future__ import annotations

from agent_runtime.llm.base import (
    ChatMessage,
    ChatModel,
    ModelError,
    ModelEvent,
    ResponseInfo,
    Role,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from agent_runtime.llm.openai_compat import OpenAIChatModel, openai_model_from_env
from agent_runtime.llm.scripted import SCRIPTED_MODEL, ScriptedTransport, scripted_model

__all__ = [
    "PROVIDERS",
    "SCRIPTED_MODEL",
    "ChatMessage",
    "ChatModel",
    "ModelError",
    "ModelEvent",
    "OpenAIChatModel",
    "ResponseInfo",
    "Role",
    "ScriptedTransport",
    "TextDelta",
    "ToolCall",
    "ToolCallRequest",
    "ToolSpec",
    "Usage",
    "create_model",
    "openai_model_from_env",
    "scripted_model",
]

PROVIDERS = ("scripted", "openai")


def create_model(
    provider: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
) -> OpenAIChatModel:
    """The model for ``LLM_PROVIDER`` (``scripted`` or ``openai``, case-insensitive).

    ``scripted`` ignores the other arguments: it needs no endpoint, key or model name.
    ``openai`` needs ``model``; ``base_url``/``api_key`` default to the ``OPENAI_*``
    variables. An unknown provider is a ``ValueError`` so a typo fails at start-up.
    The return type is the concrete class so callers can ``aclose()`` it at shutdown.
    """
    name = provider.strip().lower()
    if name == "scripted":
        return scripted_model()
    if name == "openai":
        if not model:
            raise ValueError("LLM_PROVIDER=openai needs a model name")
        return openai_model_from_env(base_url=base_url, api_key=api_key, model=model)
    raise ValueError(f"unknown LLM provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
