"""The offline scripted model, served through the real OpenAI wire format.

Why a transport and not a fake ``ChatModel``: the demo and every test run without a real
model, and they must exercise the same code the OpenAI-compatible provider runs — the
official client's SSE parsing, our ``tool_calls`` assembly, and the ``chat scripted``
spans with the response's id, finish reasons and token usage. So
:class:`ScriptedTransport` sits *under* the ``openai`` client, answering
``POST …/chat/completions`` the way a provider would: ``chat.completion.chunk`` JSON lines
as ``text/event-stream``, tool-call arguments split over several chunks, a
``finish_reason``, a final usage chunk, and ``data: [DONE]``.

What the model says is decided in :mod:`agent_runtime.llm._script` (pure, tested as data);
this module only encodes it. Everything is deterministic: ids are hashes of the request and
``created`` is a constant, so the same request gives byte-identical responses.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import httpx
import openai

from agent_runtime.llm._script import FailReply, Reply, TextReply, ToolCallReply, decide
from agent_runtime.llm.openai_compat import OpenAIChatModel

__all__ = ["SCRIPTED_BASE_URL", "SCRIPTED_MODEL", "ScriptedTransport", "scripted_model"]

SCRIPTED_MODEL = "scripted"
SCRIPTED_BASE_URL = "http://scripted.invalid/v1"
_CREATED = 1_735_689_600  # 2025-01-01T00:00:00Z: fixed, so responses are reproducible.
_WORDS_PER_CHUNK = 3
_ARGUMENT_FRAGMENTS = 3


class ScriptedTransport(httpx.AsyncBaseTransport):
    """An in-process ``httpx`` transport that plays an OpenAI chat-completions endpoint.

    ``stream=true`` requests get an SSE body; others a ``chat.completion`` JSON body. Any
    other path is a 404 and an unreadable body a 400, in OpenAI's error shape, so a wiring
    mistake fails the way it would against a real provider. A ``[fail]`` request breaks the
    stream after some text with :class:`httpx.RemoteProtocolError`, which the client reports
    as a connection error mid-stream.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request; pure function of its body (no state between requests)."""
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return _error(404, f"no route for {request.method} {request.url.path}")
        try:
            body = json.loads(await request.aread())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "request body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "request body is not a JSON object")
        messages = _dict_list(body.get("messages"))
        tools = _dict_list(body.get("tools"))
        model = str(body.get("model") or SCRIPTED_MODEL)
        reply = decide(messages, tools)
        usage = _usage(messages, tools, reply)
        response_id = "chatcmpl-" + _digest(body)[:24]
        if not body.get("stream"):
            if isinstance(reply, FailReply):
                return _error(500, "scripted provider failure ([fail] in the message)")
            return httpx.Response(200, json=_completion(response_id, model, reply, usage))
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        chunks = encode_chunks(response_id, model, reply, usage if include_usage else None)
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"},
            stream=_SSEStream(chunks, fail=isinstance(reply, FailReply)),
        )


def scripted_model() -> OpenAIChatModel:
    """The scripted model behind the official client, exactly as the OpenAI provider is wired.

    ``max_retries=0`` so a ``[fail]`` surfaces once, as a real provider failure would after
    retries ran out. The base URL uses the reserved ``.invalid`` TLD: nothing leaves the
    process, and the spans carry a recognisable ``server.address``.
    """
    http_client = httpx.AsyncClient(transport=ScriptedTransport())
    client = openai.AsyncOpenAI(
        base_url=SCRIPTED_BASE_URL,
        api_key="scripted-no-key",
        # openai>=3 types http_client as httpx2.AsyncClient but accepts httpx.AsyncClient too.
        http_client=cast(Any, http_client),
        max_retries=0,
    )
    return OpenAIChatModel(client, SCRIPTED_MODEL)


def encode_chunks(
    response_id: str, model: str, reply: Reply, usage: Mapping[str, int] | None
) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of one streamed reply, in order.

    A tool call's first chunk carries its id and name with empty arguments; the arguments
    follow in several fragments, as OpenAI streams them, so the client's assembly by
    ``index`` is really exercised. For a :class:`FailReply` only the text chunks are returned
    (the stream breaks before a ``finish_reason``).
    """

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if usage is not None:
            out["usage"] = None
        return out

    chunks = [chunk({"role": "assistant", "content": ""})]
    if isinstance(reply, ToolCallReply):
        arguments = json.dumps(reply.arguments)
        first = {"index": 0, "id": reply.call_id, "type": "function"}
        first["function"] = {"name": reply.name, "arguments": ""}
        chunks.append(chunk({"tool_calls": [first]}))
        for fragment in _split(arguments, _ARGUMENT_FRAGMENTS):
            chunks.append(
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})
            )
        chunks.append(chunk({}, "tool_calls"))
    else:
        for piece in _text_pieces(reply.text):
            chunks.append(chunk({"content": piece}))
        if isinstance(reply, FailReply):
            return chunks
        chunks.append(chunk({}, "stop"))
    if usage is not None:
        chunks.append(
            {
                "id": response_id,
                "object": "chat.completion.chunk",
                "created": _CREATED,
                "model": model,
                "choices": [],
                "usage": dict(usage),
            }
        )
    return chunks


class _SSEStream(httpx.AsyncByteStream):
    """The SSE body: one ``data:`` event per chunk, then ``[DONE]`` or a broken connection."""

    def __init__(self, chunks: list[dict[str, Any]], *, fail: bool) -> None:
        self._chunks = chunks
        self._fail = fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for item in self._chunks:
            yield f"data: {json.dumps(item, separators=(',', ':'))}\n\n".encode()
        if self._fail:
            # What a provider dropping the connection looks like to httpx.
            raise httpx.RemoteProtocolError("scripted provider closed the stream ([fail])")
        yield b"data: [DONE]\n\n"


def _completion(
    response_id: str, model: str, reply: TextReply | ToolCallReply, usage: Mapping[str, int]
) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` for the same reply."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if isinstance(reply, ToolCallReply):
        function = {"name": reply.name, "arguments": json.dumps(reply.arguments)}
        message["tool_calls"] = [{"id": reply.call_id, "type": "function", "function": function}]
        finish_reason = "tool_calls"
    else:
        message["content"] = reply.text
        finish_reason = "stop"
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": dict(usage),
    }


def _usage(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]], reply: Reply
) -> dict[str, int]:
    """Deterministic token counts: about four characters per token, at least one."""
    prompt = len(json.dumps(messages, sort_keys=True)) + len(json.dumps(tools, sort_keys=True))
    if isinstance(reply, ToolCallReply):
        completion = len(reply.name) + len(json.dumps(reply.arguments))
    else:
        completion = len(reply.text)
    prompt_tokens, completion_tokens = max(1, prompt // 4), max(1, completion // 4)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _text_pieces(text: str) -> list[str]:
    """Text in pieces of a few words, whitespace kept, so joining them restores the text."""
    words = re.findall(r"\s*\S+\s*", text) or [text]
    return [
        "".join(words[i : i + _WORDS_PER_CHUNK]) for i in range(0, len(words), _WORDS_PER_CHUNK)
    ]


def _split(text: str, parts: int) -> list[str]:
    """``text`` cut into ``parts`` non-empty fragments (fewer only if it is shorter)."""
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _dict_list(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _digest(body: object) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _error(status: int, message: str) -> httpx.Response:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return httpx.Response(status, json={"error": error})
