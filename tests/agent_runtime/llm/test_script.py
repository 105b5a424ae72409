"""The scripted model's decisions as plain data (docs/architecture.md), without the wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.agents import AGENTS
from agent_runtime.llm import ChatMessage, ToolCall
from agent_runtime.llm._script import (
    DEFAULT_PATH,
    HANDOFF_REASON,
    HANDOFF_TO_CODER,
    RUN_COMMAND,
    FailReply,
    Reply,
    TextReply,
    ToolCallReply,
    agent_name,
    decide,
)
from agent_runtime.llm.budget import estimate_tokens, fit_context
from agent_runtime.llm.openai_compat import to_openai_messages
from telemetry import names

ALL_TOOLS = ["read_file", "write_file", "execute_command", HANDOFF_TO_CODER]


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
    assert (second.name, second.arguments) == (HANDOFF_TO_CODER, {"reason": HANDOFF_REASON})

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


# --- memory: answers that depend on earlier turns of the transcript -----------------------

Outcome = Callable[[ToolCallReply], str]


def done(reply: ToolCallReply) -> str:
    """What the tools answer when everything goes well."""
    if reply.name == "write_file":
        return f"wrote {len(reply.arguments['content'])} bytes to {reply.arguments['path']}"
    if reply.name == "execute_command":
        return "exit code: 0\n4 passed"
    if reply.name == "read_file":
        return "def sort_numbers(values):\n    return values\n"
    return "transferred"


def offered_to(agent: str) -> list[str]:
    spec = AGENTS[agent]
    return [*spec.tools, *(spec.handoff_tool(target) for target in spec.handoffs)]


@dataclass
class Turn:
    agent: str  # the one the router picked
    agents: list[str]  # every agent that ran, in order
    calls: list[ToolCallReply]
    answer: str


def converse(
    transcript: list[dict[str, Any]], text: str, outcome: Outcome = done
) -> tuple[Turn, list[dict[str, Any]]]:
    """One user message through router and agents, as the agent loop runs it: the model
    sees its own system prompt, then the session's transcript (router answers not kept)."""
    transcript = [*transcript, user(text)]
    route = decide([system("orchestrator"), *transcript], [])
    assert isinstance(route, TextReply)
    agent = json.loads(route.text)["agent"]
    agents = [agent]
    calls: list[ToolCallReply] = []
    for _ in range(8):
        reply = decide([system(agent), *transcript], tools(*offered_to(agent)))
        if isinstance(reply, TextReply):
            transcript.append({"role": "assistant", "content": reply.text})
            return Turn(agents[0], agents, calls, reply.text), transcript
        assert isinstance(reply, ToolCallReply)
        calls.append(reply)
        transcript += result(reply, outcome(reply))
        if reply.name.startswith(names.HANDOFF_TOOL_PREFIX):
            agent = reply.name.removeprefix(names.HANDOFF_TOOL_PREFIX)
            agents.append(agent)
    raise AssertionError("the conversation did not end")


def test_now_add_tests_for_it_writes_tests_for_the_file_written_earlier() -> None:
    first, transcript = converse([], "Create a sorting function")
    assert [(c.name, c.arguments["path"]) for c in first.calls] == [("write_file", "sort.py")]

    second, _ = converse(transcript, "Now add tests for it")

    assert second.agent == "coder"
    (write,) = second.calls
    assert (write.name, write.arguments["path"]) == ("write_file", "test_sort.py")
    tests = write.arguments["content"]
    assert "from sort import sort_numbers\n" in tests
    assert "assert sort_numbers([3, 1, 2]) == [1, 2, 3]" in tests
    assert second.answer == "I wrote test_sort.py. Done."


def test_the_tests_it_writes_are_real_pytest_tests_of_the_earlier_file(tmp_path: Path) -> None:
    first, transcript = converse([], "Create a sorting function")
    second, _ = converse(transcript, "Now add tests for it")
    for call in (*first.calls, *second.calls):
        (tmp_path / call.arguments["path"]).write_text(call.arguments["content"])

    passing = run_pytest(tmp_path)
    (tmp_path / "sort.py").write_text("def sort_numbers(values):\n    return list(values)\n")
    failing = run_pytest(tmp_path)

    assert passing.returncode == 0, passing.stdout
    assert "3 passed" in passing.stdout
    assert failing.returncode == 1
    assert "2 failed, 1 passed" in failing.stdout


def test_tests_of_a_function_without_parameters_check_what_it_prints(tmp_path: Path) -> None:
    first, transcript = converse([], "Write main.py")
    second, _ = converse(transcript, "Add tests for it")
    for call in (*first.calls, *second.calls):
        (tmp_path / call.arguments["path"]).write_text(call.arguments["content"])

    assert second.calls[0].arguments["path"] == "test_main.py"
    assert '"hello from the scripted coder" in capsys' in second.calls[0].arguments["content"]
    assert run_pytest(tmp_path).returncode == 0
    (tmp_path / "main.py").write_text("def main():\n    print('bye')\n")
    assert run_pytest(tmp_path).returncode == 1


def test_the_tests_follow_the_content_the_transcript_shows() -> None:
    # A human's EDIT, stored as the call's arguments: the tests are of what was written.
    content = "def sort_items(items):\n    return sorted(items)\n\n\ndef helper(a, b=1):\n    ...\n"
    write = ToolCallReply("call_1", "write_file", {"path": "lib/order.py", "content": content})
    transcript = [user("Create a sorting function"), *result(write, "wrote 60 bytes")]

    reply = decide([system("coder"), *transcript, user("Please write tests")], tools(*ALL_TOOLS))

    assert isinstance(reply, ToolCallReply)
    assert reply.arguments["path"] == "lib/test_order.py"
    tests = reply.arguments["content"]
    assert "from order import sort_items, helper\n" in tests
    assert "assert sort_items([2, 1, 2]) == [1, 2, 2]" in tests
    assert "def test_helper_is_callable() -> None:\n    assert callable(helper)\n" in tests
    compile(tests, "test_order.py", "exec")


def test_a_named_file_is_tested_rather_than_the_latest() -> None:
    transcript: list[dict[str, Any]] = []
    _, transcript = converse(transcript, "Write util.py")
    _, transcript = converse(transcript, "Create a sorting function")

    turn, _ = converse(transcript, "Add tests for util.py")

    assert turn.calls[0].arguments["path"] == "test_util.py"


def test_a_file_read_earlier_can_be_tested_too() -> None:
    fix, transcript = converse([], "Fix the bug in sort.py")
    assert [c.name for c in fix.calls] == ["read_file", HANDOFF_TO_CODER, "write_file"]

    turn, _ = converse(transcript, "Now write tests for it")

    assert turn.calls[0].arguments["path"] == "test_sort.py"
    assert "sort_numbers([3, 1, 2])" in turn.calls[0].arguments["content"]


def test_a_rejected_write_is_not_remembered_as_a_file() -> None:
    def reject(reply: ToolCallReply) -> str:
        return "rejected: not now"

    _, transcript = converse([], "Create a sorting function", reject)

    turn, _ = converse(transcript, "Now add tests for it")

    # Nothing was written, so it is a first message again: "tests" runs them.
    assert [(c.name, c.arguments) for c in turn.calls] == [
        ("execute_command", {"command": RUN_COMMAND})
    ]


def test_add_tests_as_a_first_message_keeps_the_first_message_rule() -> None:
    reply = ask("coder", "Add tests for it")

    assert isinstance(reply, ToolCallReply)
    assert reply.name == "execute_command"


def test_tests_are_not_written_for_a_file_without_public_functions() -> None:
    write = ToolCallReply("call_1", "write_file", {"path": "consts.py", "content": "X = 1\n"})

    reply = decide(
        [system("coder"), user("Write consts.py"), *result(write, "ok"), user("Add tests")],
        tools(*ALL_TOOLS),
    )

    assert reply == TextReply("consts.py has no public functions I can import and test.")


def test_run_the_tests_after_a_change_routes_to_coder_and_runs_them() -> None:
    _, transcript = converse([], "Create a sorting function")
    _, transcript = converse(transcript, "Now add tests for it")

    turn, _ = converse(transcript, "Run the tests")

    assert turn.agent == "coder"
    assert [(c.name, c.arguments) for c in turn.calls] == [
        ("execute_command", {"command": RUN_COMMAND})
    ]
    assert turn.answer == f"I ran `{RUN_COMMAND}`. Done."


def test_run_the_tests_as_a_first_message_still_goes_to_ask() -> None:
    reply = ask("orchestrator", "Run the tests")
    after_text_only = decide(
        [
            system("orchestrator"),
            user("hi"),
            {"role": "assistant", "content": "hello"},
            user("Run the tests"),
        ],
        [],
    )

    assert isinstance(reply, TextReply)
    assert isinstance(after_text_only, TextReply)
    assert json.loads(reply.text)["agent"] == "ask"
    assert json.loads(after_text_only.text)["agent"] == "ask"


@pytest.mark.parametrize(
    "message", ["Add a script and execute it", "Add a test runner script and run the tests"]
)
def test_run_or_execute_still_calls_execute_command_after_earlier_turns(message: str) -> None:
    _, transcript = converse([], "Create a sorting function")

    turn, _ = converse(transcript, message)

    assert [(c.name, c.arguments) for c in turn.calls] == [
        ("execute_command", {"command": RUN_COMMAND})
    ]


def test_follow_up_routing_keeps_the_word_precedence() -> None:
    _, transcript = converse([], "Create a sorting function")

    fix, _ = converse(transcript, "Fix the failing tests")
    design, _ = converse(transcript, "Test the design")

    assert (fix.agent, design.agent) == ("debug", "architect")


def test_what_did_you_just_do_is_answered_from_the_transcript() -> None:
    _, transcript = converse([], "Create a sorting function")
    _, transcript = converse(transcript, "Now add tests for it")
    _, transcript = converse(transcript, "Run the tests")

    turn, _ = converse(transcript, "What did you just do?")

    assert turn.agent == "ask"
    assert turn.calls == []
    assert turn.answer == (
        "Earlier in this conversation I wrote sort.py; then wrote test_sort.py; then ran "
        f"`{RUN_COMMAND}` (exit code 0). Tools called: write_file, execute_command. "
        "Files written: sort.py, test_sort.py."
    )


def test_what_did_you_just_do_says_so_when_nothing_was_done_yet() -> None:
    _, transcript = converse([], "What is a closure?")

    first = ask("ask", "What did you just do?")
    later, _ = converse(transcript, "What have you done so far?")

    assert isinstance(first, TextReply)
    assert first.text == later.answer
    assert "have not called any tools" in first.text
    assert "no files were written" in first.text


def test_the_recap_tells_rejections_failures_handoffs_and_pending_calls() -> None:
    def outcome(reply: ToolCallReply) -> str:
        if reply.name == "write_file":
            return "rejected: not this file"
        return done(reply)

    _, transcript = converse([], "Fix the bug in sort.py", outcome)
    _, transcript = converse(transcript, "Run the tests", lambda _: "error: timed out")
    pending = ToolCallReply("call_p", "write_file", {"path": "b.py", "content": ""})
    transcript += [user("Write b.py"), *call(pending)]

    turn, _ = converse(transcript, "Give me a recap")

    assert turn.answer == (
        "Earlier in this conversation I read sort.py; then handed over to coder; then tried "
        "write_file (sort.py), which was rejected; then tried execute_command "
        f"(`{RUN_COMMAND}`), which failed; then asked to call write_file (b.py), which has "
        f"no result yet. Tools called: read_file, {HANDOFF_TO_CODER}, write_file, "
        "execute_command. No files were written."
    )


def test_debug_reads_the_file_written_earlier_when_none_is_named() -> None:
    _, transcript = converse([], "Create a sorting function")

    turn, _ = converse(transcript, "There is a bug in it")

    assert turn.agent == "debug"
    assert turn.calls[0].arguments == {"path": "sort.py"}


def test_a_trimmed_transcript_gives_sensible_answers() -> None:
    # Built as the service will: ChatMessage values, trimmed by the budget, sent as wire JSON.
    transcript: list[dict[str, Any]] = []
    _, transcript = converse(transcript, "Create a sorting function")
    _, transcript = converse(transcript, "What is a closure?")
    recap = [system("ask"), *transcript, user("What did you just do?")]
    add_tests = [system("coder"), *transcript, user("Now add tests for it")]

    def trimmed(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        chat = from_wire(messages)
        budget = estimate_tokens([chat[0], *chat[-3:]])
        fitted = fit_context(chat, budget)
        assert fitted.dropped_messages == 4  # the first turn, with its tool call and result
        return [dict(m) for m in to_openai_messages(fitted.messages)]

    answer = decide(trimmed(recap), [])
    tests = decide(trimmed(add_tests), tools(*ALL_TOOLS))

    assert answer == decide([system("ask"), user("What did you just do?")], [])
    assert isinstance(tests, ToolCallReply)
    assert tests.name == "execute_command"  # sort.py is no longer known: a first message


def test_a_transcript_cut_mid_turn_is_read_without_the_missing_calls() -> None:
    # A tool result whose call is gone, and a call whose result is gone.
    orphan = {"role": "tool", "tool_call_id": "call_gone", "content": "wrote 3 bytes"}
    lost = ToolCallReply("call_lost", "write_file", {"path": "a.py", "content": "X = 1\n"})
    messages = [orphan, {"role": "assistant", "content": "Done."}, *call(lost)]

    recap = decide([system("ask"), *messages, user("What did you do?")], [])
    coder = decide([system("coder"), *messages, user("Add tests for it")], tools(*ALL_TOOLS))

    assert recap == TextReply(
        "Earlier in this conversation I asked to call write_file (a.py), which has no result "
        "yet. Tools called: write_file. No files were written."
    )
    assert isinstance(coder, ToolCallReply)
    assert coder.name == "execute_command"


def test_fail_still_breaks_a_later_turn_and_the_next_recovers() -> None:
    _, transcript = converse([], "Create a sorting function")

    failing = decide([system("coder"), *transcript, user("Now add tests [fail]")], [])
    _, transcript = converse(transcript, "Now add tests for it")

    assert isinstance(failing, FailReply)
    assert transcript[-1] == {"role": "assistant", "content": "I wrote test_sort.py. Done."}


def run_pytest(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=folder,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def from_wire(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    out = []
    for m in messages:
        calls = tuple(
            ToolCall(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in m.get("tool_calls") or ()
        )
        out.append(ChatMessage(m["role"], m.get("content"), calls, m.get("tool_call_id")))
    return out
