"""The context budget: which messages of a conversation are sent to the model.

A real model has a context limit, and a session's transcript grows without one. Before
every model call :func:`fit_context` takes the messages the model would receive (the system
prompts first, then the transcript) and a budget in tokens, and returns the messages that
fit plus what was left out, so the caller can record the trim. Pure: no I/O, no state.

Rules:

- The oldest turns go first. A turn is a user message and everything after it up to the
  next user message, and it is dropped whole: the kept transcript always starts with a user
  message, so chat templates that insist on user/assistant alternation still accept it and
  the model never sees an answer without its question.
- An assistant message with ``tool_calls`` and the tool results answering it are never
  separated: if a result sits in a later turn than its call (it should not), the turns in
  between are dropped together or kept together.
- Always kept: every system message, and the latest user message with everything after it
  (the current turn, with its tool calls and results). If even those exceed the budget they
  are sent anyway and :attr:`ContextFit.over_budget` says so: trimming the current turn
  would make the model answer a different question, and the provider's own limit error is
  clearer than a silently mangled request.

The estimate. Tokens are estimated from characters, about :data:`CHARS_PER_TOKEN` per
token, plus :data:`MESSAGE_OVERHEAD_TOKENS` per message (role and framing), over the parts
the model reads: the text, each tool call's id, name and JSON arguments (encoded as the
wire encodes them), the ``tool_call_id``, and each offered tool's name, description and
JSON schema (tools count against the context too). No tokenizer is used: an exact count
needs the model's own vocabulary, which the service would have to download at run time and
which differs per model (and is unknown for most OpenAI-compatible servers). The price is
accuracy. Against the o200k and cl100k BPE vocabularies, characters/4 comes within about
10% for English prose, source code, JSON and command output, and within about 30% for
other Latin-script languages; it underestimates hex digests and base64 about 2-3x, and
Chinese or Japanese text 3-4x. Hence the anchor: the provider reports the real
``prompt_tokens`` of each call, and :class:`Anchor` scales every later estimate by
reported / estimated tokens of that call, which removes most of the error while a
conversation's content stays of one kind. The scale is clamped to [:data:`MIN_SCALE`,
:data:`MAX_SCALE`] so one odd usage report cannot empty or blow up the budget. Leave
headroom under the model's real limit for its answer and for the remaining error.

Cost: one pass over the messages. A text's length is read, not scanned; only tool call
arguments (which are dicts) are encoded, once each, as the request encoder would.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from agent_runtime.llm.base import ChatMessage, ToolSpec

__all__ = [
    "CHARS_PER_TOKEN",
    "MAX_SCALE",
    "MESSAGE_OVERHEAD_TOKENS",
    "MIN_SCALE",
    "Anchor",
    "ContextFit",
    "estimate_tokens",
    "fit_context",
]

CHARS_PER_TOKEN: Final = 4
"""Characters per token of the raw estimate (typical of English text and code)."""

MESSAGE_OVERHEAD_TOKENS: Final = 4
"""Tokens of framing per message, per tool call and per offered tool (role, separators)."""

MIN_SCALE: Final = 0.25
MAX_SCALE: Final = 4.0
"""Bounds of the anchor's calibration factor."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """A previous call's real size: the provider's ``prompt_tokens`` and our raw estimate
    of the same request. Build it with :meth:`of` from that call's messages and tools, or
    with :meth:`ContextFit.anchor` from the fit that produced them (no second pass)."""

    prompt_tokens: int
    estimated_tokens: int

    @classmethod
    def of(
        cls, prompt_tokens: int, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> Anchor:
        """The anchor of a call that sent ``messages`` and ``tools``."""
        return cls(prompt_tokens, estimate_tokens(messages, tools))

    @property
    def scale(self) -> float:
        """Real tokens per estimated token, clamped; 1.0 when either count is not positive
        (some servers report no usage)."""
        if self.prompt_tokens <= 0 or self.estimated_tokens <= 0:
            return 1.0
        return min(MAX_SCALE, max(MIN_SCALE, self.prompt_tokens / self.estimated_tokens))


@dataclass(frozen=True, slots=True)
class ContextFit:
    """What to send, and what the budget left out.

    ``tokens`` and ``dropped_tokens`` are calibrated estimates (scaled by the anchor);
    ``tokens`` includes the offered tools. ``raw_tokens`` is the uncalibrated estimate of
    what is sent, kept so the next call's anchor needs no second pass.
    """

    messages: tuple[ChatMessage, ...]
    tokens: int
    dropped_messages: int
    dropped_tokens: int
    over_budget: bool
    raw_tokens: int

    @property
    def trimmed(self) -> bool:
        """Was anything left out?"""
        return self.dropped_messages > 0

    def anchor(self, prompt_tokens: int) -> Anchor:
        """The anchor for the next call, once the provider reported this call's tokens."""
        return Anchor(prompt_tokens, self.raw_tokens)


def estimate_tokens(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> int:
    """The raw (uncalibrated) token estimate of a request's messages and tools."""
    return sum(_message_tokens(m) for m in messages) + _tools_tokens(tools)


def fit_context(
    messages: Sequence[ChatMessage],
    max_tokens: int,
    *,
    tools: Sequence[ToolSpec] = (),
    anchor: Anchor | None = None,
) -> ContextFit:
    """The messages to send within ``max_tokens`` (see the module docstring for the rules).

    ``messages`` are what the model would receive, system prompts first; ``tools`` the
    tools offered with them (their size counts, they are never dropped); ``anchor`` the
    previous call's real size, to calibrate the estimate. The messages kept are the same
    objects, in the same order.
    """
    if max_tokens <= 0:
        raise ValueError(f"the context budget must be a positive number of tokens: {max_tokens}")
    scale = anchor.scale if anchor is not None else 1.0
    sizes = [_message_tokens(m) for m in messages]
    fixed = _tools_tokens(tools)
    first = next((i for i, m in enumerate(messages) if m.role != "system"), len(messages))
    current = _current_turn_start(messages, first)
    cuts = _cuts(messages, first, current)
    # suffix[i]: raw tokens of the droppable messages from i up to the current turn.
    suffix = [0] * (current + 1)
    for i in range(current - 1, -1, -1):
        suffix[i] = suffix[i + 1] + (0 if messages[i].role == "system" else sizes[i])
    always = fixed + sum(sizes) - suffix[0]
    cut = cuts[-1]
    for candidate in cuts:  # ascending: the first that fits keeps the most
        if math.ceil((always + suffix[candidate]) * scale) <= max_tokens:
            cut = candidate
            break
    kept = [m for m in messages[:cut] if m.role == "system"]
    kept.extend(messages[cut:])
    raw = always + suffix[cut]
    tokens = math.ceil(raw * scale)
    dropped_raw = suffix[0] - suffix[cut]
    return ContextFit(
        messages=tuple(kept),
        tokens=tokens,
        dropped_messages=len(messages) - len(kept),
        dropped_tokens=math.ceil(dropped_raw * scale),
        over_budget=tokens > max_tokens,
        raw_tokens=raw,
    )


def _current_turn_start(messages: Sequence[ChatMessage], first: int) -> int:
    """Index of the latest user message; without one, the whole transcript is current."""
    for i in range(len(messages) - 1, first - 1, -1):
        if messages[i].role == "user":
            return i
    return first


def _cuts(messages: Sequence[ChatMessage], first: int, current: int) -> list[int]:
    """Where the kept transcript may start, ascending: at its first message (nothing
    dropped), then at each later user message up to the current turn's, except where a
    tool call before the cut is answered after it."""
    # A difference array: blocked[i] counts the call/result pairs that straddle index i.
    blocked = [0] * (len(messages) + 1)
    calls: dict[str, int] = {}
    for i, message in enumerate(messages):
        for call in message.tool_calls:
            calls[call.id] = i
        if message.role == "tool" and message.tool_call_id is not None:
            called = calls.get(message.tool_call_id)
            if called is not None:
                blocked[called + 1] += 1
                blocked[i + 1] -= 1
    cuts = [first]
    depth = 0
    for i in range(current + 1):
        depth += blocked[i]
        if i > first and depth == 0 and messages[i].role == "user":
            cuts.append(i)
    return cuts


def _message_tokens(message: ChatMessage) -> int:
    chars = len(message.content or "") + len(message.tool_call_id or "")
    tokens = MESSAGE_OVERHEAD_TOKENS
    for call in message.tool_calls:
        chars += len(call.id) + len(call.name) + len(json.dumps(call.arguments))
        tokens += MESSAGE_OVERHEAD_TOKENS
    return tokens + -(-chars // CHARS_PER_TOKEN)


def _tools_tokens(tools: Sequence[ToolSpec]) -> int:
    tokens = 0
    for tool in tools:
        chars = len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
        tokens += MESSAGE_OVERHEAD_TOKENS + -(-chars // CHARS_PER_TOKEN)
    return tokens
