"""What the offline scripted model answers: a pure function of the request.

This module decides *what* the scripted model says; :mod:`agent_runtime.llm.scripted` decides
*how* it goes over the wire (SSE chunks). Keeping the two apart lets the decisions be tested
as plain data and keeps the wire encoder free of agent knowledge.

The input is the OpenAI request body's ``messages`` and ``tools`` (plain JSON dicts), so the
script sees exactly what a real provider would see. The output is one :data:`Reply`.

Rules (docs/architecture.md, "The scripted model"). For a first message they are the whole story;
later messages also see what earlier turns did (the transcript's tool calls and results):

- The agent is named by the first system message, which starts with
  ``"You are the <name> agent"``; later system messages (the session's prompt) are ignored.
  No system message or an unknown name answers like ``ask`` (text only).
- The **last user message** says what to do, matched as lower-cased words.
- ``[fail]`` in the last user message: a :class:`FailReply` (a little text, then the stream
  breaks). Only the last one, so a session whose earlier turn failed can still recover.
- orchestrator: a JSON routing decision as text. Precedence, most specific first:
  debug words (bug/error/fix/debug) > architect words (design/architecture) >
  coder words (create/write/implement/add) > run words (run/execute/test) *when an earlier
  turn wrote a file or ran a command* (a follow-up such as "Run the tests") > ask. So "Fix
  the bug" is debug even if it also says "add", and "Add a design doc" is architect.
- coder: one tool call, then a text summary once its result is in. Test words with coder
  words and no run/execute word ("Now add tests for it") write ``test_<name>.py`` beside
  the latest ``*.py`` the transcript shows written (or read), or the one the message names:
  pytest tests of that file's public functions, built from its content in the transcript.
  Otherwise run/execute/test words pick ``execute_command``, anything else ``write_file``.
- debug: ``read_file`` (the ``*.py`` the message names, else the latest one the transcript
  shows, else ``main.py``) → the handoff to coder → text.
- ask: a recap question ("What did you just do?") is answered from the transcript: the
  tools called and the files written in earlier turns, or that nothing was done yet.
  Other questions, and architect: fixed text.
- A tool that is not offered in ``tools`` is never called; the agent answers in text instead.

"The turn" is every message after the last user message: a new user message starts the
tool sequence again. "Earlier turns" are the messages before it. A transcript trimmed by
the context budget is simply a shorter history: what was trimmed away is not remembered
(a follow-up then behaves as a first message), and a tool result whose call was trimmed
is ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent_runtime.llm._script_files import (
    GENERIC_SOURCE,
    PY_PATH,
    SORT_SOURCE,
    is_test_file,
    tests_module,
    tests_path,
    tests_target,
)
from telemetry import names

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
_EXECUTE_WORDS = frozenset({"run", "runs", "running", "execute", "executes", "executing"})
_TEST_WORDS = frozenset({"test", "tests", "testing"})
_RUN_WORDS = _EXECUTE_WORDS | _TEST_WORDS | {"pytest"}
_RECAP_WORDS = frozenset({"recap", "summary", "summarise", "summarize"})

# (agent, confidence, words) in precedence order; the first match wins.
_ROUTES: tuple[tuple[str, float, frozenset[str]], ...] = (
    ("debug", 0.85, _DEBUG_WORDS),
    ("architect", 0.8, _ARCHITECT_WORDS),
    ("coder", 0.9, _CODER_WORDS),
)
_FOLLOW_UP_ROUTE = ("coder", 0.75)
_FALLBACK_ROUTE = ("ask", 0.6)

RUN_COMMAND = "python -m pytest -q"
DEFAULT_PATH = "main.py"
HANDOFF_REASON = "the fix needs a code change"
HANDOFF_TO_CODER = f"{names.HANDOFF_TOOL_PREFIX}coder"

_AGENT_RE = re.compile(r"^\s*you are the (\w+) agent", re.IGNORECASE)
_WORD_RE = re.compile(r"[a-z0-9_]+")
_EXIT_RE = re.compile(r"exit code: (-?\d+)")


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
    """A tool call joined with its result (``None`` while it has none in the transcript)."""

    name: str
    arguments: dict[str, Any]
    content: str | None

    @property
    def succeeded(self) -> bool:
        """A result starting "rejected" was a human's no, "error"/"failed" a failed call."""
        status = (self.content or "").strip().lower()
        return self.content is not None and not status.startswith(("rejected", "error", "failed"))

    @property
    def path(self) -> str:
        path = self.arguments.get("path")
        return path if isinstance(path, str) and path else DEFAULT_PATH


@dataclass(frozen=True, slots=True)
class _History:
    """What the transcript says was done: the calls of earlier turns and of this one, and
    the ``*.py`` contents it shows (written by a successful ``write_file``, or read)."""

    earlier: list[_Result]
    turn: list[_Result]
    sources: dict[str, str]

    @classmethod
    def of(cls, messages: Sequence[Mapping[str, Any]]) -> _History:
        start = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        calls: dict[str, tuple[int, str, dict[str, Any]]] = {}
        answers: dict[str, str] = {}
        for index, message in enumerate(messages):
            if message.get("role") == "assistant":
                for call in message.get("tool_calls") or ():
                    function = call.get("function") or {}
                    name, raw = str(function.get("name", "")), function.get("arguments")
                    calls[str(call.get("id"))] = (index, name, _parse_arguments(raw))
            elif message.get("role") == "tool":
                answers[str(message.get("tool_call_id"))] = _content(message)
        earlier: list[_Result] = []
        turn: list[_Result] = []
        sources: dict[str, str] = {}
        for call_id, (index, name, arguments) in calls.items():  # in transcript order
            result = _Result(name, arguments, answers.get(call_id))
            (turn if index > start else earlier).append(result)
            if result.succeeded and result.path.endswith(".py"):
                content = arguments.get("content") if name == "write_file" else result.content
                if name in ("write_file", "read_file") and isinstance(content, str):
                    sources.pop(result.path, None)  # re-inserted: the latest comes last
                    sources[result.path] = content
        return cls(earlier, [r for r in turn if r.content is not None], sources)


def decide(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> Reply:
    """Return the scripted reply to a chat request (deterministic: same input, same reply)."""
    user_text = _last_user_text(messages)
    if FAIL_MARKER in user_text.lower():
        return FailReply("Let me look into that. Working on it")
    agent = agent_name(messages)
    offered = {_tool_name(tool) for tool in tools}
    history = _History.of(messages)
    call_id = _call_id(messages, tools)
    if agent == "orchestrator":
        return TextReply(_route(user_text, history))
    if agent == "coder":
        return _coder(user_text, history, offered, call_id)
    if agent == "debug":
        return _debug(user_text, history, offered, call_id)
    if agent == "architect":
        return TextReply(
            "Here is a design sketch. Split the work into small modules with one concept each. "
            "Keep the storage behind one interface so it can change later. "
            "Stream results to the client as they arrive, and trace every step."
        )
    if _is_recap(_words(user_text)):
        return TextReply(_recap(history.earlier))
    return TextReply(
        "Good question. I am the scripted assistant, so my answers are fixed. "
        "Ask me to create, fix or design something to see the other agents at work."
    )


def route(user_text: str, messages: Sequence[Mapping[str, Any]] = ()) -> str:
    """The orchestrator's routing decision as the JSON text the model would write."""
    return _route(user_text, _History.of(messages))


def _route(user_text: str, history: _History) -> str:
    words = _words(user_text)
    for agent, confidence, keys in _ROUTES:
        matched = sorted(words & keys)
        if matched:
            reason = f"the message mentions {matched[0]!r}"
            return json.dumps({"agent": agent, "confidence": confidence, "reason": reason})
    matched = sorted(words & _RUN_WORDS)
    if matched and any(r.name in ("write_file", "execute_command") for r in history.earlier):
        agent, confidence = _FOLLOW_UP_ROUTE
        reason = f"a follow-up ({matched[0]!r}) to the code changed in an earlier turn"
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


def _coder(user_text: str, history: _History, offered: set[str], call_id: str) -> Reply:
    own = [r for r in history.turn if r.name in ("write_file", "execute_command")]
    if own:
        return TextReply(_summary(own[-1]))
    words = _words(user_text)
    wants_tests = bool(words & _TEST_WORDS and words & _CODER_WORDS and not words & _EXECUTE_WORDS)
    target = tests_target(user_text, history.sources) if wants_tests else None
    if target is not None and "write_file" in offered:
        path, source = target
        tests = tests_module(path, source)
        if tests is None:
            return TextReply(f"{path} has no public functions I can import and test.")
        return ToolCallReply(call_id, "write_file", {"path": tests_path(path), "content": tests})
    if words & _RUN_WORDS and "execute_command" in offered:
        return ToolCallReply(call_id, "execute_command", {"command": RUN_COMMAND})
    if "write_file" in offered:
        path = _write_path(user_text, history.turn)
        content = SORT_SOURCE if "sort" in path or "sort" in user_text.lower() else GENERIC_SOURCE
        return ToolCallReply(call_id, "write_file", {"path": path, "content": content})
    return TextReply("I would change the code, but no file tools are available to me here.")


def _debug(user_text: str, history: _History, offered: set[str], call_id: str) -> Reply:
    names_called = {r.name for r in history.turn}
    if HANDOFF_TO_CODER in names_called:
        return TextReply("I handed the fix over to the coder agent.")
    if "read_file" in names_called:
        if HANDOFF_TO_CODER in offered:
            return ToolCallReply(call_id, HANDOFF_TO_CODER, {"reason": HANDOFF_REASON})
        return TextReply("I read the file; the fix needs a code change.")
    if "read_file" in offered:
        paths = PY_PATH.findall(user_text)
        remembered = [p for p in history.sources if not is_test_file(p)]
        path = paths[0] if paths else (remembered[-1] if remembered else DEFAULT_PATH)
        return ToolCallReply(call_id, "read_file", {"path": path})
    return TextReply("I cannot read files here; please share the failing code.")


def _summary(result: _Result) -> str:
    """One sentence on the call's result (see :attr:`_Result.succeeded`)."""
    status = (result.content or "").strip().lower()
    if result.name == "execute_command":
        command = result.arguments.get("command", RUN_COMMAND)
        if status.startswith("rejected"):
            return f"The command `{command}` was rejected, so I did not run it."
        if status.startswith(("error", "failed")):
            return f"The command `{command}` failed, so I stopped there."
        return f"I ran `{command}`. Done."
    path = result.path
    if status.startswith("rejected"):
        return f"The change to {path} was rejected, so I made no changes."
    if status.startswith(("error", "failed")):
        return f"Writing {path} failed, so I made no changes."
    return f"I wrote {path}. Done."


def _is_recap(words: frozenset[str]) -> bool:
    """A recap question: "What did you just do?", "What have you done?", "Give me a recap"."""
    return bool(words & _RECAP_WORDS) or (
        "you" in words and bool(words & {"did", "done"}) and bool(words & {"what", "which"})
    )


def _recap(earlier: list[_Result]) -> str:
    """The earlier turns' tool calls in order, then the tools and the files written."""
    if not earlier:
        return (
            "I have not called any tools in the conversation I can see, "
            "so no files were written yet."
        )
    steps = "; then ".join(_step(r) for r in earlier)
    tools = ", ".join(dict.fromkeys(r.name for r in earlier))
    written = list(dict.fromkeys(r.path for r in earlier if r.name == "write_file" and r.succeeded))
    files = f"Files written: {', '.join(written)}." if written else "No files were written."
    return f"Earlier in this conversation I {steps}. Tools called: {tools}. {files}"


def _step(result: _Result) -> str:
    """One earlier call in a few words, with what became of it."""
    if result.name == "write_file":
        done, what = "wrote", result.path
    elif result.name == "execute_command":
        done, what = "ran", f"`{result.arguments.get('command', RUN_COMMAND)}`"
        code = _EXIT_RE.match((result.content or "").strip())
        if result.succeeded and code is not None:
            what += f" (exit code {code.group(1)})"
    elif result.name == "read_file":
        done, what = "read", result.path
    elif result.name.startswith(names.HANDOFF_TOOL_PREFIX):
        done, what = "handed over to", result.name.removeprefix(names.HANDOFF_TOOL_PREFIX)
    else:
        done, what = "called", result.name
    if result.content is None:
        return f"asked to call {result.name} ({what}), which has no result yet"
    if result.succeeded:
        return f"{done} {what}"
    outcome = "was rejected" if result.content.strip().lower().startswith("rejected") else "failed"
    return f"tried {result.name} ({what}), which {outcome}"


def _write_path(user_text: str, turn: list[_Result]) -> str:
    """Where coder writes: the file debug read, else a ``*.py`` the user named, else by topic."""
    for result in reversed(turn):
        if result.name == "read_file" and result.arguments.get("path"):
            return result.path
    paths = PY_PATH.findall(user_text)
    if paths:
        return str(paths[0])
    return "sort.py" if "sort" in user_text.lower() else DEFAULT_PATH


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
