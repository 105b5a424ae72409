"""The scripted model's decisions as plain data (DESIGN §6), without the wire."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_runtime.llm._script import (
    DEFAULT_PATH,
    HANDOFF_REASON,
    RUN_COMMAND,
    FailReply,
    Reply,
    TextReply,
    ToolCallReply,
    agent_name,
    decide,
)

ALL_TOOLS = ["read_file", "write_file", "execute_command", "transfer_to_coder"]


def tools(*names: str) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": n, "parameters": {}}} for n in names]


def system(agent: str) -> dict[str, Any]:
    return {"role": "system", "content": f"You are the {agent} agent. Be helpful."}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def call(reply: Reply) -> list[dict[str, Any]]:
    """The assistant message carrying ``reply``'s tool call (what the agent loop appends)."""
    assert isinstance(reply, ToolCallReply)
    function = {"name": reply.name, "arguments": json.dumps(reply.arguments)}
    return [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": reply.call_id, "type": "function", "function": function}],
        }
    ]


def result(reply: Reply, content: str) -> list[dict[str, Any]]:
    assert isinstance(reply, ToolCallReply)
    return [*call(reply), {"role": "tool", "tool_call_id": reply.call_id, "content": content}]


def ask(agent: str, text: str, *history: dict[str, Any], offered: list[str] = ALL_TOOLS) -> Reply:
    return decide([system(agent), user(text), *history], tools(*offered))


@pytest.mark.parametrize(
    ("message", "agent", "confidence"),
    [
        ("Create a sorting function", "coder", 0.9),
        ("Please IMPLEMENT a parser", "coder", 0.9),
        ("Add a test runner script and run the tests", "coder", 0.9),
        ("Fix the bug in sort.py", "debug", 0.85),
        ("I get an error when I run it", "debug", 0.85),
        ("Design the architecture of a plugin system", "architect", 0.8),
        ("What is a closure?", "ask", 0.6),
        # Precedence: debug words > architect words > coder words.
        ("Add error handling to parse.py", "debug", 0.85),
        ("Write a design document", "architect", 0.8),
    ],
)
def test_orchestrator_routes_by_words_with_a_fixed_precedence(
    message: str, agent: str, confidence: float
) -> None:
    reply = ask("orchestrator", message)

    assert isinstance(reply, TextReply)
    decision = json.loads(reply.text)
    assert decision["agent"] == agent
    assert decision["confidence"] == confidence
    assert decision["reason"]


def test_orchestrator_matches_whole_words_only() -> None:
    reply = ask("orchestrator", "Tell me about prefixes and additions")

    assert isinstance(reply, TextReply)
    assert json.loads(reply.text)["agent"] == "ask"


def test_coder_writes_a_file_then_summarises() -> None:
    first = ask("coder", "Create a sorting function")

    assert isinstance(first, ToolCallReply)
    assert first.name == "write_file"
    assert first.arguments["path"] == "sort.py"
    assert "def sort_numbers" in first.arguments["content"]
    assert first.call_id.startswith("call_")

    second = ask("coder", "Create a sorting function", *result(first, "wrote 120 bytes"))

    assert second == TextReply("I wrote sort.py. Done.")


def test_coder_uses_a_python_path_named_in_the_message() -> None:
    reply = ask("coder", "Write utils/helpers.py please")

    assert isinstance(reply, ToolCallReply)
    assert reply.arguments["path"] == "utils/helpers.py"


def test_coder_runs_a_command_for_run_words() -> None:
    first = ask("coder", "Add a test runner script and run the tests")

    assert isinstance(first, ToolCallReply)
    assert (first.name, first.arguments) == ("execute_command", {"command": RUN_COMMAND})

    second = ask("coder", "Run the tests", *result(first, "3 passed"))

    assert isinstance(second, TextReply)
    assert RUN_COMMAND in second.text


def test_coder_summary_says_when_the_call_was_rejected() -> None:
    first = ask("coder", "Create a sorting function")

    second = ask("coder", "Create a sorting function", *result(first, "rejected: not now"))

    assert isinstance(second, TextReply)
    assert "rejected" in second.text


def test_coder_writes_the_file_debug_read_after_a_handoff() -> None:
    read = ask("debug", "Fix the bug in sort.py")
    transfer = ask("debug", "Fix the bug in sort.py", *result(read, "def f(): ..."))
    history = [*result(read, "def f(): ..."), *result(transfer, "transferred")]

    reply = ask("coder", "Fix the bug in the sorter", *history)

    assert isinstance(reply, ToolCallReply)
    assert reply.name == "write_file"
    assert reply.arguments["path"] == "sort.py"


def test_debug_reads_then_hands_over_to_coder_then_answers() -> None:
    first = ask("debug", "Fix the bug in sort.py")
    assert isinstance(first, ToolCallReply)
    assert (first.name, first.arguments) == ("read_file", {"path": "sort.py"})

    second = ask("debug", "Fix the bug in sort.py", *result(first, "def f(): ..."))
    assert isinstance(second, ToolCallReply)
    assert (second.name, second.arguments) == ("transfer_to_coder", {"reason": HANDOFF_REASON})

    third = ask(
        "debug", "Fix the bug in sort.py", *result(first, "..."), *result(second, "transferred")
    )
    assert isinstance(third, TextReply)


def test_debug_reads_main_py_when_no_file_is_named() -> None:
    reply = ask("debug", "There is a bug somewhere")

    assert isinstance(reply, ToolCallReply)
    assert reply.arguments == {"path": DEFAULT_PATH}


@pytest.mark.parametrize(("agent", "message"), [("coder", "Create x"), ("debug", "Fix x")])
def test_tools_that_are_not_offered_are_never_called(agent: str, message: str) -> None:
    assert isinstance(ask(agent, message, offered=[]), TextReply)


def test_debug_answers_in_text_when_it_cannot_hand_over() -> None:
    first = ask("debug", "Fix sort.py", offered=["read_file"])

    second = ask("debug", "Fix sort.py", *result(first, "..."), offered=["read_file"])

    assert isinstance(second, TextReply)


@pytest.mark.parametrize("agent", ["architect", "ask"])
def test_architect_and_ask_answer_in_text_even_with_tools(agent: str) -> None:
    reply = ask(agent, "Create a design for sorting")

    assert isinstance(reply, TextReply)
    assert len(reply.text.split(". ")) >= 2


def test_fail_marker_in_the_last_user_message_fails_every_agent() -> None:
    for agent in ("orchestrator", "coder", "debug", "architect", "ask"):
        assert isinstance(ask(agent, "Create x [FAIL]"), FailReply)


def test_only_the_last_user_message_can_fail_so_a_session_recovers() -> None:
    messages = [system("ask"), user("hi [fail]"), {"role": "assistant", "content": "?"}]

    reply = decide([*messages, user("hello again")], [])

    assert isinstance(reply, TextReply)


def test_a_new_user_message_starts_the_tool_sequence_again() -> None:
    first = ask("coder", "Create a sorting function")
    history = [user("Create a sorting function"), *result(first, "ok")]

    reply = decide([system("coder"), *history, user("Now write main.py")], tools(*ALL_TOOLS))

    assert isinstance(reply, ToolCallReply)
    assert reply.arguments["path"] == "main.py"


def test_same_request_same_reply_and_different_requests_different_call_ids() -> None:
    assert ask("coder", "Create a sorting function") == ask("coder", "Create a sorting function")

    one = ask("coder", "Create a sorting function")
    other = ask("coder", "Create a sorting routine")
    assert isinstance(one, ToolCallReply)
    assert isinstance(other, ToolCallReply)
    assert one.call_id != other.call_id


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("You are the debug agent.", "debug"),
        ("  you are the Architect agent, who designs", "architect"),
        ("You are the unknown agent.", "ask"),
        ("Be nice.", "ask"),
    ],
)
def test_agent_name_comes_from_the_system_message(content: str, expected: str) -> None:
    assert agent_name([{"role": "system", "content": content}, user("x")]) == expected


def test_no_system_message_answers_like_ask() -> None:
    assert isinstance(decide([user("Create a sorting function")], tools(*ALL_TOOLS)), TextReply)


def test_coder_summary_says_when_the_tool_failed() -> None:
    first = ask("coder", "Create a sorting function")

    second = ask("coder", "Create a sorting function", *result(first, "error: outside workspace"))

    assert second == TextReply("Writing sort.py failed, so I made no changes.")
