"""What the offline scripted model answers: a pure function of the request.

This module decides *what* the scripted model says; :mod:`agent_runtime.llm.scripted` decides
*how* it goes over the wire (SSE chunks). Keeping the two apart lets the decisions be tested
as plain data and keeps the wire encoder free of agent knowledge.

The input is the OpenAI request body's ``messages`` and ``tools`` (plain JSON dicts), so the
script sees exactly what a real provider would see. The output is one :data:`Reply`.

Rules (DESIGN §6):

- The agent is named by the system message, which starts with ``"You are the <name> agent"``.
  No system message or an unknown name answers like ``ask`` (text only).
- The **last user message** drives every decision, matched as lower-cased words. Only the last
  one, so a session whose earlier turn failed can still recover.
- ``[fail]`` in the last user message: a :class:`FailReply` (a little text, then the stream
  breaks).
- orchestrator: a JSON routing decision as text. Precedence, most specific first:
  debug words (bug/error/fix/debug) > architect words (design/architecture) >
  coder words (create/write/implement/add) > ask. So "Fix the bug" is debug even if it also
  says "add", and "Add a design doc" is architect.
- coder: one tool call, then a text summary once its result is in. "run/execute/test" words
  pick ``execute_command``, anything else ``write_file``.
- debug: ``read_file`` → ``transfer_to_coder`` → text.
- architect, ask: text only.
- A tool that is not offered in ``tools`` is never called; the agent answers in text instead.

"The turn" is every message after the last user message: tool calls and results from earlier
turns never count, so every new user message starts the sequence again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

AGENTS = ("orchestrator", "coder", "debug", "architect", "ask")
FAIL_MARKER = "[fail]"

_DEBUG_WORDS = frozenset(
    {"bug", "bugs", "buggy", "error", "errors", "fix", "fixes", "fixing", "debug", "debugging"}
)
_ARCHITECT_WORDS = frozenset({"design", "designs", "designing", "architecture", "architectural"})
_CODER_WORDS = frozenset(
    {"create", "creates", "creating", "write", "writes", "writing", "implement", "implements"}
    | {"implementing", "add", "adds", "adding"}
)
_RUN_WORDS = frozenset(
    {"run", "runs", "running", "execute", "executes", "executing", "test", "tests", "testing"}
    | {"pytest"}
)

# (agent, confidence, words) in precedence order; the first match wins.
_ROUTES: tuple[tuple[str, float, frozenset[str]], ...] = (
    ("debug", 0.85, _DEBUG_WORDS),
    ("architect", 0.8, _ARCHITECT_WORDS),
    ("coder", 0.9, _CODER_WORDS),
)
_FALLBACK_ROUTE = ("ask", 0.6)

RUN_COMMAND = "python -m pytest -q"
DEFAULT_PATH = "main.py"
HANDOFF_REASON = "the fix needs a code change"

_AGENT_RE = re.compile(r"^\s*you are the (\w+) agent", re.IGNORECASE)
_WORD_RE = re.compile(r"[a-z0-9_]+")
_PY_PATH_RE = re.compile(r"[\w./-]*\w\.py\b")

_SORT_SOURCE = '''"""Sorting helpers, written by the scripted coder agent."""


def sort_numbers(values: list[int]) -> list[int]:
    """Return a new list with the values in ascending order."""
    return sorted(values)
'''

_GENERIC_SOURCE = '''"""Written by the scripted coder agent."""


def main() -> None:
    """Print a greeting so the change is easy to see."""
    print("hello from the scripted coder")


if __name__ == "__main__":
    main()
'''


@dataclass(frozen=True, slots=True)
class TextReply:
    """The model answers with text only (finish_reason ``stop``)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallReply:
    """The model calls one tool (finish_reason ``tool_calls``)."""

    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FailReply:
    """The provider streams ``text`` and then breaks the connection: the error path."""

    text: str


Reply = TextReply | ToolCallReply | FailReply


@dataclass(frozen=True, slots=True)
class _Result:
    """A tool result of the current turn, joined with the call it answers."""

    name: str
    arguments: dict[str, Any]
    content: str


def decide(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> Reply:
    """Return the scripted reply to a chat request (deterministic: same input, same reply)."""
    user_text = _last_user_text(messages)
    if FAIL_MARKER in user_text.lower():
        return FailReply("Let me look into that. Working on it")
    agent = agent_name(messages)
    offered = {_tool_name(tool) for tool in tools}
    words = _words(user_text)
    results = _turn_results(messages)
    call_id = _call_id(messages, tools)
    if agent == "orchestrator":
        return TextReply(route(user_text))
    if agent == "coder":
        return _coder(user_text, words, results, offered, call_id)
    if agent == "debug":
        return _debug(user_text, results, offered, call_id)
    if agent == "architect":
        return TextReply(
            "Here is a design sketch. Split the work into small modules with one concept each. "
            "Keep the storage behind one interface so it can change later. "
            "Stream results to the client as they arrive, and trace every step."
        )
    return TextReply(
        "Good question. I am the scripted assistant, so my answers are fixed. "
        "Ask me to create, fix or design something to see the other agents at work."
    )


def route(user_text: str) -> str:
    """The orchestrator's routing decision as the JSON text the model would write."""
    words = _words(user_text)
    for agent, confidence, keys in _ROUTES:
        matched = sorted(words & keys)
        if matched:
            reason = f"the message mentions {matched[0]!r}"
            return json.dumps({"agent": agent, "confidence": confidence, "reason": reason})
    agent, confidence = _FALLBACK_ROUTE
    reason = "no create, fix or design request: answer the question"
    return json.dumps({"agent": agent, "confidence": confidence, "reason": reason})


def agent_name(messages: Sequence[Mapping[str, Any]]) -> str:
    """The agent named by the first system message, or ``"ask"`` when there is none."""
    for message in messages:
        if message.get("role") == "system":
            match = _AGENT_RE.match(_content(message))
            if match and match.group(1).lower() in AGENTS:
                return match.group(1).lower()
            break
    return "ask"


def _coder(
    user_text: str,
    words: frozenset[str],
    results: list[_Result],
    offered: set[str],
    call_id: str,
) -> Reply:
    own = [r for r in results if r.name in ("write_file", "execute_command")]
    if own:
        return TextReply(_summary(own[-1]))
    if words & _RUN_WORDS and "execute_command" in offered:
        return ToolCallReply(call_id, "execute_command", {"command": RUN_COMMAND})
    if "write_file" in offered:
        path = _write_path(user_text, results)
        content = _SORT_SOURCE if "sort" in path or "sort" in user_text.lower() else _GENERIC_SOURCE
        return ToolCallReply(call_id, "write_file", {"path": path, "content": content})
    return TextReply("I would change the code, but no file tools are available to me here.")


def _debug(user_text: str, results: list[_Result], offered: set[str], call_id: str) -> Reply:
    names = {r.name for r in results}
    if "transfer_to_coder" in names:
        return TextReply("I handed the fix over to the coder agent.")
    if "read_file" in names:
        if "transfer_to_coder" in offered:
            return ToolCallReply(call_id, "transfer_to_coder", {"reason": HANDOFF_REASON})
        return TextReply("I read the file; the fix needs a code change.")
    if "read_file" in offered:
        paths = _PY_PATH_RE.findall(user_text)
        return ToolCallReply(call_id, "read_file", {"path": paths[0] if paths else DEFAULT_PATH})
    return TextReply("I cannot read files here; please share the failing code.")


def _summary(result: _Result) -> str:
    """One sentence on the call's result: a result starting "rejected" was a human's no,
    one starting "error"/"failed" a failed tool call; anything else succeeded."""
    status = result.content.strip().lower()
    if result.name == "execute_command":
        command = result.arguments.get("command", RUN_COMMAND)
        if status.startswith("rejected"):
            return f"The command `{command}` was rejected, so I did not run it."
        if status.startswith(("error", "failed")):
            return f"The command `{command}` failed, so I stopped there."
        return f"I ran `{command}`. Done."
    path = result.arguments.get("path", DEFAULT_PATH)
    if status.startswith("rejected"):
        return f"The change to {path} was rejected, so I made no changes."
    if status.startswith(("error", "failed")):
        return f"Writing {path} failed, so I made no changes."
    return f"I wrote {path}. Done."


def _write_path(user_text: str, results: list[_Result]) -> str:
    """Where coder writes: the file debug read, else a ``*.py`` the user named, else by topic."""
    for result in reversed(results):
        path = result.arguments.get("path")
        if result.name == "read_file" and isinstance(path, str) and path:
            return path
    paths = _PY_PATH_RE.findall(user_text)
    if paths:
        return str(paths[0])
    return "sort.py" if "sort" in user_text.lower() else DEFAULT_PATH


def _turn_results(messages: Sequence[Mapping[str, Any]]) -> list[_Result]:
    """Tool results after the last user message, each joined with its call's name and args."""
    start = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    results: list[_Result] = []
    for message in messages[start + 1 :]:
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                calls[str(call.get("id"))] = (
                    str(function.get("name", "")),
                    _parse_arguments(function.get("arguments")),
                )
        elif message.get("role") == "tool":
            name, arguments = calls.get(str(message.get("tool_call_id")), ("", {}))
            results.append(_Result(name, arguments, _content(message)))
    return results


def _parse_arguments(raw: object) -> dict[str, Any]:
    if not isinstance(raw, str):
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _call_id(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> str:
    """A tool-call id derived from the request, so a replayed request gets the same id."""
    digest = hashlib.sha256(
        json.dumps([list(messages), list(tools)], sort_keys=True, default=str).encode()
    ).hexdigest()
    return f"call_{digest[:24]}"


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _content(message)
    return ""


def _content(message: Mapping[str, Any]) -> str:
    """Message text; list-of-parts content (the multimodal shape) is joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _tool_name(tool: Mapping[str, Any]) -> str:
    function = tool.get("function")
    return str(function.get("name", "")) if isinstance(function, dict) else ""


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD_RE.findall(text.lower()))
