"""The transcript as the model sees it: stored entries in, chat messages out.

A session's transcript (:class:`~agent_runtime.store.MessageRecord` entries, in order) is
the state of its agent runs: what every model call receives, and what a paused run resumes
from. These functions are pure, so the rules are tested as data:

- ``handoff`` entries are the conversation's record of agent switches; the model never
  sees them (an agent-requested handoff is also a ``transfer_to_<agent>`` tool call and its
  result, which it does see).
- Every tool call the model receives is followed by its result. A call whose result was
  never recorded (a run cut short by a crash) gets a stand-in result saying so, because
  providers refuse a tool call without one.
- The pending calls of a paused run are the calls of the last assistant message that have
  no result yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from agent_runtime.llm import ChatMessage, ToolCall
from agent_runtime.store import MessageRecord

__all__ = [
    "INTERRUPTED_RESULT",
    "calls_of",
    "to_chat_messages",
    "tool_call_dicts",
    "unanswered_calls",
]

INTERRUPTED_RESULT = "error: no result was recorded for this call (the run was interrupted)"


def tool_call_dicts(calls: Iterable[ToolCall]) -> list[dict[str, Any]]:
    """Tool calls as the transcript stores them: ``{"id", "name", "arguments"}``."""
    return [{"id": c.id, "name": c.name, "arguments": dict(c.arguments)} for c in calls]


def calls_of(entry: MessageRecord) -> tuple[ToolCall, ...]:
    """The tool calls of an assistant entry."""
    return tuple(
        ToolCall(str(c["id"]), str(c["name"]), dict(c.get("arguments") or {}))
        for c in entry.tool_calls
    )


def to_chat_messages(entries: Sequence[MessageRecord]) -> list[ChatMessage]:
    """The transcript in the model's message shape, tool calls and results paired."""
    answered = {e.tool_call_id for e in entries if e.role == "tool" and e.tool_call_id}
    out: list[ChatMessage] = []
    for entry in entries:
        if entry.role == "handoff":
            continue
        if entry.role == "assistant":
            calls = calls_of(entry)
            out.append(ChatMessage("assistant", entry.content or None, calls))
            out.extend(
                ChatMessage("tool", INTERRUPTED_RESULT, tool_call_id=call.id)
                for call in calls
                if call.id not in answered
            )
        elif entry.role == "tool":
            out.append(ChatMessage("tool", entry.content or "", tool_call_id=entry.tool_call_id))
        elif entry.role in ("system", "user"):
            out.append(ChatMessage(entry.role, entry.content or ""))  # type: ignore[arg-type]
    return out


def unanswered_calls(entries: Sequence[MessageRecord]) -> tuple[ToolCall, ...]:
    """The calls of the last assistant entry that have no result yet, in order (a paused
    run's pending calls); empty when that entry was answered or there is none."""
    for index in range(len(entries) - 1, -1, -1):
        entry = entries[index]
        if entry.role == "assistant":
            answered = {e.tool_call_id for e in entries[index + 1 :] if e.role == "tool"}
            return tuple(call for call in calls_of(entry) if call.id not in answered)
        if entry.role == "user":
            return ()
    return ()
