"""bench/ benchmark 7: the model server speaks the wire format the official client reads and
records what each call carried; the seeded sessions are what the service stores and sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from bench.model_server import DEFAULT_CHUNKS, MODEL, ROUTE, ModelServer, text_chunk_json
from bench.per_transcript import chunk_floor
from bench.transcript_figures import sent_messages, slope
from bench.transcripts import BIG_RESULT_BYTES, seed, wire_messages
from openai.types.chat import ChatCompletionMessageParam

ROUTER: ChatCompletionMessageParam = {
    "role": "system",
    "content": "You are the orchestrator agent. Route the user's message.",
}
CODER: ChatCompletionMessageParam = {"role": "system", "content": "You are the coder agent."}


@pytest.fixture
async def server() -> AsyncIterator[tuple[ModelServer, openai.AsyncOpenAI]]:
    model = ModelServer()
    listener = await asyncio.start_server(model.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="bench-no-key", max_retries=0
    )
    try:
        yield model, client
    finally:
        await client.close()
        listener.close()


async def _text(
    client: openai.AsyncOpenAI, messages: list[ChatCompletionMessageParam]
) -> tuple[list[str], int]:
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usages = [], 0
    async for chunk in stream:
        usages += chunk.usage is not None
        pieces += [c.delta.content for c in chunk.choices if c.delta.content]
    return pieces, usages


async def test_the_router_is_answered_with_its_routing_decision(
    server: tuple[ModelServer, openai.AsyncOpenAI],
) -> None:
    model, client = server

    pieces, usages = await _text(client, [ROUTER, {"role": "user", "content": "hi"}])

    assert json.loads("".join(pieces)) == ROUTE
    assert usages == 1
    assert [call["router"] for call in model.calls] == [True]


async def test_an_agent_answers_in_as_many_chunks_as_the_message_asks_and_each_call_is_recorded(
    server: tuple[ModelServer, openai.AsyncOpenAI],
) -> None:
    model, client = server
    messages: list[ChatCompletionMessageParam] = [
        CODER,
        {"role": "user", "content": "Explain. [chunks=25]"},
    ]

    pieces, _ = await _text(client, messages)
    default, _ = await _text(client, [CODER, {"role": "user", "content": "Explain."}])

    assert len(pieces) == 25
    assert len(default) == DEFAULT_CHUNKS
    first, second = model.calls
    assert first["messages"] == 2 and not first["router"]
    assert first["messages_bytes"] == len(
        json.dumps(messages, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert first["body_bytes"] > first["messages_bytes"]
    assert second["messages"] == 2


async def test_seeded_sessions_are_whole_turns_with_their_tool_results(tmp_path: Path) -> None:
    seeded = await seed(tmp_path, {10: 2, 20: 1})

    ten, twenty = seeded[10], seeded[20]
    assert len(ten) == 10 and len(twenty) == 20
    roles = [entry.role for entry in ten[:5]]
    assert roles == ["user", "handoff", "assistant", "tool", "assistant"]
    results = [len(entry.content or "") for entry in twenty if entry.role == "tool"]
    assert results == [BIG_RESULT_BYTES, 400, 400, 400]
    wire = wire_messages(twenty)
    assert len(wire) == sent_messages(20) - 2  # the model also gets a prompt and the message
    assert wire[1]["tool_calls"][0]["id"] == wire[2]["tool_call_id"]  # type: ignore[index]


def test_the_floors_and_the_slope() -> None:
    chunk_floor(text_chunk_json(0))  # parses what the server streams

    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
