"""The transcript as the model sees it: handoffs hidden, calls paired, pending calls found."""

from __future__ import annotations

from agent_runtime.llm import ChatMessage, ToolCall
from agent_runtime.store import MessageRecord
from agent_runtime.transcript import (
    INTERRUPTED_RESULT,
    to_chat_messages,
    tool_call_dicts,
    unanswered_calls,
)

READ = ToolCall("c1", "read_file", {"path": "a.py"})
WRITE = ToolCall("c2", "write_file", {"path": "a.py", "content": "x"})


def _entry(role: str, content: str | None = None, **fields: object) -> MessageRecord:
    return MessageRecord("s", role, content, fields.pop("agent", None), 0.0, **fields)  # type: ignore[arg-type]


def test_handoffs_are_kept_from_the_model_and_calls_stay_paired() -> None:
    entries = [
        _entry("system", "be brief"),
        _entry("user", "fix a.py"),
        _entry("handoff", "the message mentions 'fix'", agent="debug"),
        _entry("assistant", None, tool_calls=tool_call_dicts([READ])),
        _entry("tool", "print(1)", tool_call_id="c1"),
        _entry("assistant", "done"),
    ]
    assert to_chat_messages(entries) == [
        ChatMessage("system", "be brief"),
        ChatMessage("user", "fix a.py"),
        ChatMessage("assistant", None, (READ,)),
        ChatMessage("tool", "print(1)", tool_call_id="c1"),
        ChatMessage("assistant", "done"),
    ]


def test_a_call_without_a_result_gets_a_stand_in_one() -> None:
    entries = [
        _entry("user", "go"),
        _entry("assistant", None, tool_calls=tool_call_dicts([READ, WRITE])),
        _entry("tool", "print(1)", tool_call_id="c1"),
        _entry("user", "again"),
    ]
    messages = to_chat_messages(entries)
    assert messages[2:4] == [
        ChatMessage("tool", INTERRUPTED_RESULT, tool_call_id="c2"),
        ChatMessage("tool", "print(1)", tool_call_id="c1"),
    ]
    assert [m.tool_call_id for m in messages if m.role == "tool"] == ["c2", "c1"]


def test_the_pending_calls_are_the_last_answers_unanswered_ones() -> None:
    paused = [
        _entry("user", "go"),
        _entry("assistant", None, tool_calls=tool_call_dicts([READ, WRITE])),
        _entry("tool", "print(1)", tool_call_id="c1"),
    ]
    assert unanswered_calls(paused) == (WRITE,)
    answered = [*paused, _entry("tool", "wrote", tool_call_id="c2")]
    assert unanswered_calls(answered) == ()
    assert unanswered_calls([*paused, _entry("user", "new")]) == ()
    assert unanswered_calls([]) == ()
