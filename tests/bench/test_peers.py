"""bench/peers: the workload server speaks the wire format the official client reads, refuses
what would make the frameworks' runs differ, and the agent-runtime driver runs every variant
(``lean`` with nothing written to its durable store)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from bench.peers.driver import Workload
from bench.peers.drivers.runtime import RuntimeSubject, keep_in_memory
from bench.peers.workload import ANSWER, FILE_NAME, FILE_TEXT, MARKER, WorkloadServer
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from agent_runtime.store import MessageRecord, SessionRecord, SQLiteStore

TOOLS: list[ChatCompletionFunctionToolParam] = [
    {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}
]


@pytest.fixture
async def server() -> AsyncIterator[tuple[WorkloadServer, str]]:
    workload = WorkloadServer()
    listener = await asyncio.start_server(workload.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield workload, f"http://127.0.0.1:{port}/v1"
    finally:
        listener.close()
        for writer in list(workload.connections):
            writer.transport.abort()


async def _stream(
    client: openai.AsyncOpenAI, messages: list[ChatCompletionMessageParam]
) -> tuple[str, dict[str, str], int]:
    """Text, tool call name/id/arguments, and usage chunks of one streamed completion."""
    stream = await client.chat.completions.create(
        model="m",
        messages=messages,
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, call, usages = [], {"id": "", "name": "", "arguments": ""}, 0
    async for chunk in stream:
        usages += chunk.usage is not None
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            for fragment in choice.delta.tool_calls or ():
                call["id"] += fragment.id or ""
                if fragment.function is not None:
                    call["name"] += fragment.function.name or ""
                    call["arguments"] += fragment.function.arguments or ""
    return "".join(text), call, usages


async def test_a_run_is_one_read_file_call_then_text(
    server: tuple[WorkloadServer, str],
) -> None:
    workload, base_url = server
    async with openai.AsyncOpenAI(base_url=base_url, api_key="x") as client:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
        text, call, usages = await _stream(client, messages)
        assert (text, call["name"], json.loads(call["arguments"]), usages) == (
            "",
            "read_file",
            {"path": FILE_NAME},
            1,
        )
        messages += [
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": "read_file", "arguments": call["arguments"]},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call["id"], "content": FILE_TEXT},
        ]
        text, call, usages = await _stream(client, messages)
    assert (text, call["name"], usages) == ("".join(ANSWER), "", 1)
    assert (workload.stats.tool_calls, workload.stats.answers, workload.stats.refused) == (1, 1, 0)


async def test_the_server_refuses_what_would_make_runs_differ(
    server: tuple[WorkloadServer, str],
) -> None:
    workload, base_url = server
    user: ChatCompletionMessageParam = {"role": "user", "content": "hi"}
    no_marker: list[ChatCompletionMessageParam] = [
        user,
        {"role": "tool", "tool_call_id": "c", "content": "not the file"},
    ]
    async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError, match="stream"):
            await client.chat.completions.create(model="m", messages=[user], tools=TOOLS)
        with pytest.raises(openai.BadRequestError, match="read_file"):
            await client.chat.completions.create(model="m", messages=[user], stream=True)
        with pytest.raises(openai.BadRequestError, match="content"):
            await client.chat.completions.create(
                model="m", messages=no_marker, tools=TOOLS, stream=True
            )
    assert (workload.stats.refused, workload.stats.tool_calls, workload.stats.answers) == (3, 0, 0)
    assert MARKER in FILE_TEXT


@pytest.mark.parametrize("options", [(), ("split",)])
async def test_the_runtime_driver_runs_every_variant(
    server: tuple[WorkloadServer, str], tmp_path: Path, options: tuple[str, ...]
) -> None:
    workload, base_url = server
    subject = await RuntimeSubject(Workload(base_url, tmp_path, options)).start()
    try:
        for variant in subject.variants:
            subject.prepare(variant, 1)
            await subject.run(variant, 1)
        counts = await subject.counts()
        stores = {v: subject.data_dir / v / "agent-runtime.db" for v in subject.variants}
        written = {}
        for variant, path in stores.items():
            store = SQLiteStore(path)
            await store.open()
            written[variant] = len(await store.list_messages(f"{variant}-1"))
            await store.close()
    finally:
        await subject.aclose()
    runs = len(subject.variants)
    assert (workload.stats.tool_calls, workload.stats.answers) == (runs, runs)
    if "on" in subject.variants:
        assert counts["spans"] == 5 and counts["logs"] == 1
    else:  # the lean runtime kept its session and transcript in memory only
        assert written["off"] > 0 and written["unaudited"] > 0 and written["lean"] == 0


async def test_a_store_kept_in_memory_needs_no_database(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "never-opened.db")
    keep_in_memory(store)
    await store.insert_session(SessionRecord("s", 1.0))
    await store.append_message(MessageRecord("s", "user", "hi", None, 2.0))
    assert [m.content for m in await store.list_messages("s")] == ["hi"]
    assert not (tmp_path / "never-opened.db").exists()
