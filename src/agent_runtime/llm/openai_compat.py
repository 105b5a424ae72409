"""The OpenAI-compatible provider: any chat-completions endpoint, through the official client.

Why the official ``openai`` client rather than raw HTTP: it owns retries, timeouts and the
SSE decoding of every OpenAI-compatible server, and the scripted model (an in-process
transport under the same client) shares this whole path.

What this module adds over the client: our message and tool types in, :data:`ModelEvent` out
(text as it arrives, each tool call once its streamed fragments are complete, then the
response's id, model and finish reasons, usage last),
and one exception type, :class:`ModelError`, whose message never carries the API key.

The request's ``messages`` and ``tools`` go to the client as ``extra_body``, its documented
way to send a part of the body as given. Its typed parameters are transformed first: the
client walks every value against the parameter types with runtime introspection (for
aliases and formats that none of the chat message or tool types declare), a walk whose cost
grows with the transcript each call carries, while :func:`to_openai_messages` and
:func:`to_openai_tools` already build the wire shape. The typed parameters get empty
stand-ins, so each key keeps its place and the body is the same JSON. Nothing reads the
client's ``messages`` argument: the ``chat`` spans are built from what crosses the
:class:`~agent_runtime.llm.base.ChatModel` interface, and the client is not instrumented.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from openai import AsyncStream
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from agent_runtime.llm.base import (
    ChatMessage,
    ModelError,
    ModelEvent,
    ResponseInfo,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from telemetry import scrub

__all__ = ["OpenAIChatModel", "openai_model_from_env", "to_openai_messages", "to_openai_tools"]

# Failures of the provider or the wire. The client wraps most transport errors in
# APIConnectionError; raw httpx errors and undecodable SSE data can still escape it.
_PROVIDER_ERRORS: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    httpx.HTTPError,
    httpx.StreamError,
    json.JSONDecodeError,
)
_MAX_ERROR_CHARS = 500
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


class OpenAIChatModel:
    """A :class:`~agent_runtime.llm.base.ChatModel` over ``client.chat.completions``.

    Every call streams (``stream=True`` with ``include_usage``), so text reaches the user as it
    is generated and the final chunk reports token usage. The client is injected: retries,
    timeouts and the HTTP transport (a real endpoint or the scripted one) are its business.
    """

    def __init__(self, client: openai.AsyncOpenAI, model: str) -> None:
        self._client = client
        self._model = model

    @property
    def model_name(self) -> str:
        """The model name sent in each request (and the ``chat <model>`` span's suffix)."""
        return self._model

    @property
    def provider_name(self) -> str:
        """``openai``: the wire protocol spoken, whatever server implements it."""
        return "openai"

    @property
    def server_address(self) -> str | None:
        """The host of the client's base URL (``scripted.invalid`` for the scripted model)."""
        return self._client.base_url.host or None

    async def aclose(self) -> None:
        """Close the underlying client's connections; call once at shutdown."""
        await self._client.close()

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        model: str | None = None,
    ) -> AsyncIterator[ModelEvent]:
        """Stream one completion: :class:`TextDelta` s, :class:`ToolCallRequest` s, then usage.

        A tool call is yielded when its choice finishes (or the stream ends), once all of its
        argument fragments arrived and parsed. :class:`Usage` comes last, and only when the
        provider reported it. Provider, transport and decoding failures raise
        :class:`ModelError` with the original exception as ``__cause__``.

        Closing the iterator early (the client went away) closes the HTTP response; the
        caller's ``chat`` span ends without an error: a cancellation is an outcome, not a
        provider failure.
        """
        untransformed: dict[str, Any] = {"messages": to_openai_messages(messages)}
        if tools:
            untransformed["tools"] = to_openai_tools(tools)
        try:
            response = await self._client.chat.completions.create(
                model=model or self._model,
                # Empty stand-ins keep each key's place in the body; extra_body fills them.
                messages=[],
                tools=[] if tools else openai.omit,
                stream=True,
                stream_options={"include_usage": True},
                extra_body=untransformed,
            )
        except _PROVIDER_ERRORS as exc:
            raise self._error(exc) from exc

        assembler = _ToolCallAssembler()
        usage: Usage | None = None
        response_id: str | None = None
        response_model: str | None = None
        finish_reasons: list[str] = []
        try:
            async with contextlib.aclosing(self._chunks(response)) as chunks:
                async for chunk in chunks:
                    response_id = response_id or chunk.id or None
                    response_model = response_model or chunk.model or None
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    for choice in chunk.choices:
                        if choice.index != 0:
                            continue  # n=1 is requested; ignore anything else a server sends.
                        delta = choice.delta
                        if delta.content:
                            yield TextDelta(delta.content)
                        for fragment in delta.tool_calls or ():
                            assembler.add(fragment)
                        if choice.finish_reason is not None:
                            finish_reasons.append(choice.finish_reason)
                            for call in assembler.complete():
                                yield ToolCallRequest(call)
            for call in assembler.complete():
                yield ToolCallRequest(call)
            yield ResponseInfo(response_id, response_model, tuple(finish_reasons))
            if usage is not None:
                yield usage
        except (GeneratorExit, asyncio.CancelledError):
            # The consumer went away: release the connection; a failing close must not
            # replace the cancellation.
            with contextlib.suppress(Exception):
                await response.close()
            raise
        except BaseException as exc:
            await response.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            await response.close()

    async def _chunks(
        self, response: AsyncStream[ChatCompletionChunk]
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        """The response's chunks, with provider failures turned into :class:`ModelError`.

        Kept apart from :meth:`stream` so that only the provider's failures are translated,
        never an exception the consumer throws into the generator.
        """
        try:
            async for chunk in response:
                yield chunk
        except _PROVIDER_ERRORS as exc:
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> ModelError:
        """A :class:`ModelError` naming the failure, with every secret scrubbed from its text."""
        if isinstance(exc, openai.APIStatusError):
            detail = f"HTTP {exc.status_code}: {exc.message}"
        elif isinstance(exc, openai.APIConnectionError) and exc.__cause__ is not None:
            cause = exc.__cause__
            detail = f"{exc.message} ({type(cause).__name__}: {cause})"
        else:
            detail = str(exc)
        secrets = [self._client.api_key, getattr(self._client, "admin_api_key", None)]
        text = scrub(f"{type(exc).__name__}: {detail}", secrets)
        return ModelError(f"model {self._model!r} failed: {text}"[:_MAX_ERROR_CHARS])


def openai_model_from_env(
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str,
    timeout_s: float = 60.0,
    max_retries: int = 2,
) -> OpenAIChatModel:
    """An :class:`OpenAIChatModel` for ``LLM_PROVIDER=openai``, from the service's settings.

    ``base_url`` and ``api_key`` left ``None`` fall back to the client's own environment
    variables (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``), so an OpenAI-compatible server
    (vLLM, Ollama, LiteLLM…) needs only ``OPENAI_BASE_URL``. A missing key is a
    :class:`ModelError` at start-up rather than on the first user message.
    """
    try:
        client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries
        )
    except openai.OpenAIError as exc:
        raise ModelError(f"cannot configure the OpenAI client: {exc}") from exc
    return OpenAIChatModel(client, model)


def to_openai_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    """Our messages in the chat-completions request shape.

    Assistant tool calls carry their arguments re-encoded as JSON; tool results carry the
    ``tool_call_id`` they answer (a tool message without one is a caller bug: ValueError).
    """
    out: list[ChatCompletionMessageParam] = []
    for message in messages:
        content = message.content or ""
        if message.role == "system":
            out.append({"role": "system", "content": content})
        elif message.role == "user":
            out.append({"role": "user", "content": content})
        elif message.role == "tool":
            if not message.tool_call_id:
                raise ValueError("a tool message needs the tool_call_id it answers")
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": content})
        elif message.tool_calls:
            calls: list[ChatCompletionMessageFunctionToolCallParam] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in message.tool_calls
            ]
            out.append({"role": "assistant", "content": message.content, "tool_calls": calls})
        else:
            out.append({"role": "assistant", "content": content})
    return out


def to_openai_tools(tools: Sequence[ToolSpec]) -> list[ChatCompletionFunctionToolParam]:
    """Our tool specs as ``function`` tools (an empty schema becomes a no-argument object)."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters or _EMPTY_PARAMETERS,
            },
        }
        for tool in tools
    ]


@dataclass(slots=True)
class _PartialCall:
    """One streamed tool call being assembled: id and name first, then argument fragments."""

    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


class _ToolCallAssembler:
    """Joins ``delta.tool_calls`` fragments by ``index`` into complete :class:`ToolCall` s."""

    def __init__(self) -> None:
        self._pending: dict[int, _PartialCall] = {}
        self._emitted = 0

    def add(self, fragment: ChoiceDeltaToolCall) -> None:
        """Fold one ``ChoiceDeltaToolCall`` fragment into the call at its index."""
        partial = self._pending.setdefault(fragment.index, _PartialCall())
        if fragment.id and not partial.id:
            partial.id = fragment.id
        function = fragment.function
        if function is not None:
            if function.name and not partial.name:
                partial.name = function.name
            if function.arguments:
                partial.arguments.append(function.arguments)

    def complete(self) -> list[ToolCall]:
        """The pending calls in index order, parsed; pending is empty afterwards.

        A call without a name, or whose arguments are not a JSON object, is a provider
        failure (:class:`ModelError`). A missing id (some compatible servers omit it) is
        replaced by a positional one, so results can still be matched to calls.
        """
        calls: list[ToolCall] = []
        for index in sorted(self._pending):
            partial = self._pending[index]
            if not partial.name:
                raise ModelError(f"tool call at index {index} arrived without a function name")
            raw = "".join(partial.arguments)
            try:
                arguments = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError as exc:
                raise ModelError(
                    f"tool call {partial.name!r} has malformed JSON arguments"
                ) from exc
            if not isinstance(arguments, dict):
                raise ModelError(f"tool call {partial.name!r} arguments are not a JSON object")
            call_id = partial.id or f"call_{self._emitted}"
            self._emitted += 1
            calls.append(ToolCall(id=call_id, name=partial.name, arguments=arguments))
        self._pending.clear()
        return calls
