"""The scripted model through the real wire: SSE bytes, the openai client, our parser."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from agent_runtime.llm import (
    SCRIPTED_MODEL,
    ChatMessage,
    ModelError,
    ModelEvent,
    OpenAIChatModel,
    ResponseInfo,
    ScriptedTransport,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
    scripted_model,
)
from agent_runtime.llm._script import HANDOFF_TO_CODER

TOOLS = [
    ToolSpec(name, f"the {name} tool", {"type": "object", "properties": {}})
    for name in ("read_file", "write_file", "execute_command", HANDOFF_TO_CODER)
]
URL = "http://scripted.invalid/v1/chat/completions"


async def run(
    model: OpenAIChatModel, messages: list[ChatMessage], tools: list[ToolSpec] = TOOLS
) -> list[ModelEvent]:
    return [event async for event in model.stream(messages, tools)]


def opening(agent: str, text: str) -> list[ChatMessage]:
    return [ChatMessage("system", f"You are the {agent} agent."), ChatMessage("user", text)]


def text_of(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def tool_calls(events: list[ModelEvent]) -> list[ToolCall]:
    return [e.call for e in events if isinstance(e, ToolCallRequest)]


def answer(call: ToolCall, content: str) -> list[ChatMessage]:
    """What an agent loop appends after running ``call``."""
    return [
        ChatMessage("assistant", None, tool_calls=(call,)),
        ChatMessage("tool", content, tool_call_id=call.id),
    ]


async def post(body: dict[str, Any], path: str = "/v1/chat/completions") -> httpx.Response:
    async with httpx.AsyncClient(transport=ScriptedTransport()) as client:
        return await client.post(f"http://scripted.invalid{path}", json=body)


def sse_chunks(response: httpx.Response) -> tuple[list[dict[str, Any]], list[str]]:
    lines = [line for line in response.text.split("\n\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    data = [line.removeprefix("data: ") for line in lines]
    return [json.loads(d) for d in data if d != "[DONE]"], data


@pytest.mark.parametrize(
    ("message", "agent"),
    [
        ("Create a sorting function", "coder"),
        ("Fix the bug in sort.py", "debug"),
        ("Add a test runner script and run the tests", "coder"),
        ("Design the architecture for plugins", "architect"),
        ("What time is it?", "ask"),
    ],
)
async def test_orchestrator_streams_its_routing_decision_as_json_text(
    model: OpenAIChatModel, message: str, agent: str
) -> None:
    events = await run(model, opening("orchestrator", message), [])

    assert sum(isinstance(e, TextDelta) for e in events) >= 2
    assert json.loads(text_of(events))["agent"] == agent
    assert isinstance(events[-1], Usage)


async def test_coder_writes_then_answers(model: OpenAIChatModel) -> None:
    messages = opening("coder", "Create a sorting function")

    first = await run(model, messages)
    (call,) = tool_calls(first)
    assert call.name == "write_file"
    assert call.arguments["path"] == "sort.py"
    info = first[-2]
    assert isinstance(info, ResponseInfo)
    assert info.finish_reasons == ("tool_calls",)
    assert info.response_model == SCRIPTED_MODEL
    assert (info.response_id or "").startswith("chatcmpl-")
    assert isinstance(first[-1], Usage)

    second = await run(model, [*messages, *answer(call, "ok")])
    assert tool_calls(second) == []
    assert text_of(second) == "I wrote sort.py. Done."


async def test_debug_reads_hands_over_and_coder_fixes_the_same_file(
    model: OpenAIChatModel,
) -> None:
    messages = opening("debug", "Fix the bug in sort.py")
    (read,) = tool_calls(await run(model, messages))
    messages += answer(read, "def sort(xs): return xs")
    (transfer,) = tool_calls(await run(model, messages))
    messages += answer(transfer, "transferred to coder")

    coder = [ChatMessage("system", "You are the coder agent."), *messages[1:]]
    (write,) = tool_calls(await run(model, coder))

    assert read == ToolCall(read.id, "read_file", {"path": "sort.py"})
    assert transfer.name == HANDOFF_TO_CODER
    assert transfer.arguments == {"reason": "the fix needs a code change"}
    assert (write.name, write.arguments["path"]) == ("write_file", "sort.py")


@pytest.mark.parametrize("agent", ["architect", "ask"])
async def test_architect_and_ask_stream_text_over_several_chunks(
    model: OpenAIChatModel, agent: str
) -> None:
    events = await run(model, opening(agent, "How should I structure this?"))

    assert sum(isinstance(e, TextDelta) for e in events) >= 3
    assert tool_calls(events) == []


async def test_fail_marker_breaks_the_stream_after_some_text(model: OpenAIChatModel) -> None:
    events: list[ModelEvent] = []
    with pytest.raises(ModelError) as raised:
        async for event in model.stream(opening("coder", "Create it [fail]"), TOOLS):
            events.append(event)

    assert events and all(isinstance(e, TextDelta) for e in events)
    assert isinstance(raised.value.__cause__, openai.APIConnectionError)
    assert isinstance(raised.value.__cause__.__cause__, httpx.RemoteProtocolError)
    assert "scripted-no-key" not in str(raised.value)


async def test_same_input_gives_the_same_events_across_models() -> None:
    results = []
    for _ in range(2):
        chat_model = scripted_model()
        results.append(await run(chat_model, opening("coder", "Create a sorting function")))
        await chat_model.aclose()

    assert results[0] == results[1]


async def test_tool_call_arguments_are_really_split_across_chunks() -> None:
    body = {
        "model": "scripted",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "You are the debug agent."},
            {"role": "user", "content": "Fix the bug in sort.py"},
        ],
        "tools": [{"type": "function", "function": {"name": "read_file"}}],
    }

    response = await post(body)
    chunks, data = sse_chunks(response)

    assert response.headers["content-type"] == "text/event-stream"
    assert data[-1] == "[DONE]"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {"scripted"}
    deltas = [c["choices"][0]["delta"].get("tool_calls") for c in chunks if c["choices"]]
    fragments = [d[0] for d in deltas if d]
    assert fragments[0]["id"].startswith("call_")
    assert fragments[0]["function"]["name"] == "read_file"
    pieces = [f["function"]["arguments"] for f in fragments[1:]]
    assert len(pieces) >= 2
    assert all("id" not in f for f in fragments[1:])
    assert json.loads("".join(pieces)) == {"path": "sort.py"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == (
        chunks[-1]["usage"]["prompt_tokens"] + chunks[-1]["usage"]["completion_tokens"]
    )


async def test_no_usage_chunk_unless_asked_for() -> None:
    body = {"model": "scripted", "stream": True, "messages": [{"role": "user", "content": "hi"}]}

    chunks, _ = sse_chunks(await post(body))

    assert all(c["choices"] for c in chunks)
    assert all("usage" not in c for c in chunks)


async def test_non_stream_request_gets_a_chat_completion(model: OpenAIChatModel) -> None:
    client = openai.AsyncOpenAI(
        base_url="http://scripted.invalid/v1",
        api_key="scripted-no-key",
        http_client=httpx.AsyncClient(transport=ScriptedTransport()),  # type: ignore[arg-type]
    )
    completion = await client.chat.completions.create(
        model="scripted",
        messages=[
            {"role": "system", "content": "You are the ask agent."},
            {"role": "user", "content": "hi"},
        ],
    )
    await client.close()

    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0


async def test_unknown_path_is_a_404_in_openai_error_shape() -> None:
    response = await post({}, path="/v1/embeddings")

    assert response.status_code == 404
    assert "error" in response.json()


async def test_a_later_turn_remembers_the_transcript_over_the_wire(
    model: OpenAIChatModel,
) -> None:
    coder = ChatMessage("system", "You are the coder agent.")
    session = ChatMessage("system", "The user likes small files.")
    transcript = [ChatMessage("user", "Create a sorting function")]
    (write,) = tool_calls(await run(model, [coder, session, *transcript]))
    transcript += answer(write, "wrote 120 bytes to sort.py")
    transcript.append(ChatMessage("assistant", "I wrote sort.py. Done."))
    transcript.append(ChatMessage("user", "Now add tests for it"))

    events = await run(model, [coder, session, *transcript])
    (tests,) = tool_calls(events)
    transcript += answer(tests, "wrote 300 bytes to test_sort.py")
    transcript.append(ChatMessage("user", "What did you just do?"))
    recap = text_of(
        await run(model, [ChatMessage("system", "You are the ask agent."), *transcript])
    )

    assert (tests.name, tests.arguments["path"]) == ("write_file", "test_sort.py")
    assert "from sort import sort_numbers" in tests.arguments["content"]
    assert "wrote sort.py; then wrote test_sort.py" in recap
    usage = events[-1]
    assert isinstance(usage, Usage)
    first_usage = (await run(model, [coder, transcript[0]]))[-1]
    assert isinstance(first_usage, Usage)
    assert usage.input_tokens > first_usage.input_tokens  # the transcript was sent
