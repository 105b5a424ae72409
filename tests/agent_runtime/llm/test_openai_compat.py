"""OpenAIChatModel against a real HTTP server on 127.0.0.1 speaking the chat-completions wire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import openai
import pytest
from scripts.processes import free_port
from tests.support.openai_server import CannedResponse, ChatServer, chunk, json_response, sse

from agent_runtime.llm import (
    ChatMessage,
    ChatModel,
    ModelError,
    ModelEvent,
    OpenAIChatModel,
    ResponseInfo,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
    create_model,
)
from agent_runtime.llm.openai_compat import to_openai_messages, to_openai_tools
from telemetry import scrub

API_KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
READ_FILE = ToolSpec(
    "read_file",
    "Read a file from the workspace.",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


@pytest.fixture
async def server() -> AsyncIterator[ChatServer]:
    async with ChatServer() as running:
        yield running


@pytest.fixture
async def model(server: ChatServer) -> AsyncIterator[OpenAIChatModel]:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)
    chat_model = OpenAIChatModel(client, "test-model")
    yield chat_model
    await chat_model.aclose()


async def collect(
    model: ChatModel, messages: list[ChatMessage], tools: list[ToolSpec] | None = None
) -> list[ModelEvent]:
    return [event async for event in model.stream(messages, tools or [])]


async def collect_until_error(
    model: ChatModel, messages: list[ChatMessage]
) -> tuple[list[ModelEvent], ModelError]:
    events: list[ModelEvent] = []
    with pytest.raises(ModelError) as raised:
        async for event in model.stream(messages, []):
            events.append(event)
    return events, raised.value


USER = [ChatMessage("user", "hello")]


async def test_streams_text_deltas_then_usage(server: ChatServer, model: OpenAIChatModel) -> None:
    server.respond(
        sse(
            [
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Hel"}),
                chunk({"content": "lo!"}),
                chunk({}, finish_reason="stop"),
                chunk(usage=USAGE),
            ]
        )
    )

    events = await collect(model, USER)

    assert events == [
        TextDelta("Hel"),
        TextDelta("lo!"),
        ResponseInfo("chatcmpl-test", "test-model", ("stop",)),
        Usage(11, 7),
    ]


async def test_assembles_interleaved_tool_call_fragments_by_index(
    server: ChatServer, model: OpenAIChatModel
) -> None:
    first = {"index": 0, "id": "call_a", "type": "function"}
    second = {"index": 1, "id": "call_b", "type": "function"}
    server.respond(
        sse(
            [
                chunk({"role": "assistant", "content": None}),
                chunk(
                    {"tool_calls": [first | {"function": {"name": "read_file", "arguments": ""}}]}
                ),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"pa'}}]}),
                chunk({"tool_calls": [second | {"function": {"name": "read_file"}}]}),
                chunk(
                    {"tool_calls": [{"index": 1, "function": {"arguments": '{"path": "b.py"}'}}]}
                ),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'th": "a.py"}'}}]}),
                chunk({}, finish_reason="tool_calls"),
                chunk(usage=USAGE),
            ]
        )
    )

    events = await collect(model, USER, [READ_FILE])

    assert events == [
        ToolCallRequest(ToolCall("call_a", "read_file", {"path": "a.py"})),
        ToolCallRequest(ToolCall("call_b", "read_file", {"path": "b.py"})),
        ResponseInfo("chatcmpl-test", "test-model", ("tool_calls",)),
        Usage(11, 7),
    ]


async def test_tool_call_without_finish_reason_is_emitted_at_stream_end(
    server: ChatServer, model: OpenAIChatModel
) -> None:
    call = {"index": 0, "id": "call_x", "function": {"name": "read_file", "arguments": "{}"}}
    server.respond(sse([chunk({"tool_calls": [call]})]))

    events = await collect(model, USER, [READ_FILE])

    assert events == [
        ToolCallRequest(ToolCall("call_x", "read_file", {})),
        ResponseInfo("chatcmpl-test", "test-model", ()),
    ]


async def test_request_body_carries_model_messages_tools_and_stream_flags(
    server: ChatServer, model: OpenAIChatModel
) -> None:
    server.respond(sse([chunk({"content": "ok"}, finish_reason="stop")]))
    call = ToolCall("call_1", "read_file", {"path": "a.py"})
    messages = [
        ChatMessage("system", "You are the debug agent."),
        ChatMessage("user", "Fix a.py"),
        ChatMessage("assistant", None, tool_calls=(call,)),
        ChatMessage("tool", "print('a')", tool_call_id="call_1"),
    ]

    await collect(model, messages, [READ_FILE])

    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == "test-model"
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["messages"] == [
        {"role": "system", "content": "You are the debug agent."},
        {"role": "user", "content": "Fix a.py"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "print('a')"},
    ]
    assert request.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "Read a file from the workspace.",
                "parameters": READ_FILE.parameters,
            },
        }
    ]


LIST_FILES = ToolSpec("list_files", "List the workspace's files.")  # no parameters


@pytest.mark.parametrize("tools", [[READ_FILE, LIST_FILES], []], ids=["tools", "no_tools"])
async def test_request_body_is_byte_for_byte_the_typed_parameters_body(
    server: ChatServer, model: OpenAIChatModel, tools: list[ToolSpec]
) -> None:
    """The messages and tools skip the client's parameter transform (they travel as
    ``extra_body``), and the bytes on the wire are those of the same request made through
    the client's typed parameters: same keys, same order, same values."""
    server.respond(*(sse([chunk({"content": "ok"}, finish_reason="stop")]) for _ in range(2)))
    first = ToolCall("call_1", "read_file", {"path": "src/é.py", "lines": [1, 2], "deep": {}})
    second = ToolCall("call_2", "write_file", {"path": "a.py", "content": 'print("ü")\n'})
    messages = [
        ChatMessage("system", "You are the coder agent."),
        ChatMessage("system", "The session's own prompt: answer in French."),
        ChatMessage("user", 'Lis "src/é.py"\n\tpuis corrige-le ✓'),
        ChatMessage("assistant", "Je regarde.", tool_calls=(first, second)),
        ChatMessage("tool", "def f():\n    return '\\u00e9'\n", tool_call_id="call_1"),
        ChatMessage("tool", "", tool_call_id="call_2"),
        ChatMessage("assistant", None, tool_calls=(ToolCall("call_3", "list_files", {}),)),
        ChatMessage("tool", "a.py\nsrc/é.py", tool_call_id="call_3"),
        ChatMessage("assistant", "C'est fait."),
        ChatMessage("user", "Merci"),
    ]

    await collect(model, messages, tools)
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)
    typed = await client.chat.completions.create(
        model="test-model",
        messages=to_openai_messages(messages),
        tools=to_openai_tools(tools) if tools else openai.omit,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for _ in typed:
        pass
    await client.close()

    ours, through_the_types = server.requests
    assert ours.raw == through_the_types.raw
    assert list(ours.body) == ["model", "stream", "messages", "stream_options"] + (
        ["tools"] if tools else []
    )
    assert ours.body["messages"] == to_openai_messages(messages)


async def test_tools_are_omitted_when_none_are_offered(
    server: ChatServer, model: OpenAIChatModel
) -> None:
    server.respond(sse([chunk({"content": "ok"}, finish_reason="stop")]))

    await collect(model, USER)

    assert "tools" not in server.requests[0].body


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
async def test_error_status_raises_model_error_without_the_api_key(
    server: ChatServer, model: OpenAIChatModel, status: int
) -> None:
    # A server that echoes the key back (as some proxies do) must not leak it through us.
    message = f"Incorrect API key provided: {API_KEY} (Authorization: Bearer {API_KEY})"
    server.respond(json_response(status, {"error": {"message": message, "type": "x"}}))

    events, error = await collect_until_error(model, USER)

    assert events == []
    assert f"HTTP {status}" in str(error)
    assert API_KEY not in str(error)
    assert API_KEY[:12] not in str(error)
    assert isinstance(error.__cause__, openai.APIStatusError)


async def test_connection_dropped_mid_stream_raises_model_error_after_the_text_so_far(
    server: ChatServer, model: OpenAIChatModel
) -> None:
    response = sse([chunk({"content": "par"}), chunk({"content": "tial"}), chunk({"content": "!"})])
    response.drop_after = 2
    server.respond(response)

    events, error = await collect_until_error(model, USER)

    assert events == [TextDelta("par"), TextDelta("tial")]
    assert "APIConnectionError" in str(error)
    assert isinstance(error.__cause__, openai.APIConnectionError)


async def test_error_event_mid_stream_raises_model_error(
    server: ChatServer, model: OpenAIChatModel
) -> None:
    server.respond(sse([chunk({"content": "a"}), {"error": {"message": "overloaded"}}]))

    events, error = await collect_until_error(model, USER)

    assert events == [TextDelta("a")]
    assert "overloaded" in str(error)


async def test_undecodable_sse_data_raises_model_error(
    server: ChatServer, model: OpenAIChatModel
) -> None:
    server.respond(
        CannedResponse(headers={"content-type": "text/event-stream"}, parts=[b"data: {\n\n"])
    )

    _, error = await collect_until_error(model, USER)

    assert isinstance(error.__cause__, json.JSONDecodeError)


async def test_malformed_tool_arguments_raise_model_error(
    server: ChatServer, model: OpenAIChatModel
) -> None:
    call = {"index": 0, "id": "c", "function": {"name": "read_file", "arguments": '{"path": '}}
    server.respond(sse([chunk({"tool_calls": [call]}), chunk({}, finish_reason="tool_calls")]))

    _, error = await collect_until_error(model, USER)

    assert "malformed JSON arguments" in str(error)
    assert isinstance(error.__cause__, json.JSONDecodeError)


async def test_unreachable_endpoint_raises_model_error() -> None:
    port = free_port()  # a port that was free a moment ago: nothing listens there
    client = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, max_retries=0
    )
    model = OpenAIChatModel(client, "test-model")

    _, error = await collect_until_error(model, USER)
    await model.aclose()

    assert isinstance(error.__cause__, openai.APIConnectionError)
    assert API_KEY not in str(error)


def test_tool_message_without_call_id_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="tool_call_id"):
        to_openai_messages([ChatMessage("tool", "result")])


def test_scrub_masks_the_given_secret_and_key_shaped_strings() -> None:
    text = "key=my-secret-value auth=Bearer abc.def other=sk-abcdefghijklmnop"

    assert scrub(text, ["my-secret-value"]) == ("key=[REDACTED] auth=[REDACTED] other=[REDACTED]")


def test_create_model_openai_uses_the_given_endpoint_and_model() -> None:
    model = create_model("OpenAI", base_url="http://127.0.0.1:9/v1", api_key="k", model="m")

    assert isinstance(model, OpenAIChatModel)
    assert model.model_name == "m"


def test_create_model_openai_needs_a_model_name() -> None:
    with pytest.raises(ValueError, match="model name"):
        create_model("openai", api_key="k")


def test_create_model_openai_without_any_key_fails_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    with pytest.raises(ModelError, match="cannot configure"):
        create_model("openai", model="m")


def test_create_model_rejects_an_unknown_provider() -> None:
    with pytest.raises(ValueError, match="unknown LLM provider"):
        create_model("anthropic")
