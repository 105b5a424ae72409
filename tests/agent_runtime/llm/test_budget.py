"""The context budget: which messages fit, what is left out, and the estimate behind it."""

from __future__ import annotations

import json

import pytest

from agent_runtime.llm import ChatMessage, ToolCall, ToolSpec
from agent_runtime.llm.budget import (
    CHARS_PER_TOKEN,
    MAX_SCALE,
    MESSAGE_OVERHEAD_TOKENS,
    MIN_SCALE,
    Anchor,
    ContextFit,
    estimate_tokens,
    fit_context,
)

SYSTEM = ChatMessage("system", "You are the coder agent. Write code.")
SESSION = ChatMessage("system", "The user prefers short answers.")


def user(text: str) -> ChatMessage:
    return ChatMessage("user", text)


def said(text: str) -> ChatMessage:
    return ChatMessage("assistant", text)


def calls(*ids: str, size: int = 40) -> ChatMessage:
    return ChatMessage(
        "assistant",
        None,
        tool_calls=tuple(
            ToolCall(i, "write_file", {"path": f"{i}.py", "content": "x" * size}) for i in ids
        ),
    )


def result(call_id: str, content: str = "wrote 40 bytes") -> ChatMessage:
    return ChatMessage("tool", content, tool_call_id=call_id)


def turn(n: int, *, size: int = 40) -> list[ChatMessage]:
    """One earlier turn: a request, a tool call with its result, a closing answer."""
    return [
        user(f"request {n} " + "r" * size),
        calls(f"c{n}", size=size),
        result(f"c{n}"),
        said(f"done {n} " + "d" * size),
    ]


def cost(messages: list[ChatMessage]) -> int:
    return estimate_tokens(messages)


def fit(messages: list[ChatMessage], budget: int, **kwargs: object) -> ContextFit:
    return fit_context(messages, budget, **kwargs)  # type: ignore[arg-type]


def test_everything_is_sent_when_it_fits() -> None:
    messages = [SYSTEM, SESSION, *turn(1), *turn(2), user("now")]

    fitted = fit(messages, cost(messages))

    assert fitted.messages == tuple(messages)
    assert all(a is b for a, b in zip(fitted.messages, messages, strict=True))
    assert (fitted.dropped_messages, fitted.dropped_tokens) == (0, 0)
    assert fitted.tokens == fitted.raw_tokens == cost(messages)
    assert not fitted.trimmed
    assert not fitted.over_budget


def test_the_oldest_turns_go_first_and_whole() -> None:
    one, two, three = turn(1), turn(2), turn(3)
    now = [user("now add tests")]
    messages = [SYSTEM, SESSION, *one, *two, *three, *now]
    # Room for the system prompts, turn 3 and the current turn, one token short of turn 2.
    budget = cost([SYSTEM, SESSION, *two, *three, *now]) - 1

    fitted = fit(messages, budget)

    assert fitted.messages == (SYSTEM, SESSION, *three, *now)
    assert fitted.dropped_messages == len(one) + len(two)
    assert fitted.dropped_tokens == cost([*one, *two])
    assert fitted.tokens == cost([SYSTEM, SESSION, *three, *now]) <= budget
    assert fitted.trimmed
    assert not fitted.over_budget


def test_a_tool_call_is_never_sent_without_its_result_at_the_boundary() -> None:
    # Turn 1 ends in a big tool-call group: cutting inside the turn, right after the call,
    # would fit, but the call and its results (and the turn's question) go together.
    big = [
        user("request 1"),
        calls("a", "b", size=400),
        result("a"),
        result("b", "y" * 400),
        said("done 1"),
    ]
    now = [user("and now?")]
    messages = [SYSTEM, *big, *now]
    just_the_tail_of_turn_1 = cost([SYSTEM, result("b", "y" * 400), said("done 1"), *now])

    fitted = fit(messages, just_the_tail_of_turn_1)

    assert fitted.messages == (SYSTEM, *now)
    assert fitted.dropped_messages == len(big)
    assert_pairs_intact(fitted.messages)


def test_a_result_stored_in_a_later_turn_keeps_the_turns_between_together() -> None:
    # A call answered after the user spoke again (e.g. an approval decided late): no cut
    # may fall between the call and its result, so turns 1 and 2 are dropped together.
    straddling = [user("request 1"), calls("late"), user("request 2"), result("late"), said("ok")]
    three = turn(3)
    now = [user("now")]
    messages = [SYSTEM, *straddling, *three, *now]
    # Enough to keep "request 2" onwards, if a cut there were allowed.
    budget = cost([SYSTEM, *straddling[2:], *three, *now])

    fitted = fit(messages, budget)

    assert fitted.messages == (SYSTEM, *three, *now)
    assert_pairs_intact(fitted.messages)


def test_a_result_in_the_current_turn_keeps_its_call_s_turn() -> None:
    early = turn(1)
    pending = [user("request 2"), calls("late")]
    now = [user("and?"), result("late"), said("finally")]
    messages = [SYSTEM, *early, *pending, *now]

    fitted = fit(messages, 1)

    assert fitted.messages == (SYSTEM, *pending, *now)
    assert fitted.over_budget
    assert_pairs_intact(fitted.messages)


def test_system_prompts_and_the_current_turn_are_kept_even_over_budget() -> None:
    current = [user("write it " + "w" * 800), calls("now", size=800), result("now")]
    messages = [SYSTEM, SESSION, *turn(1), *turn(2), *current]

    fitted = fit(messages, 10)

    assert fitted.messages == (SYSTEM, SESSION, *current)
    assert fitted.over_budget
    assert fitted.tokens == cost([SYSTEM, SESSION, *current]) > 10
    assert fitted.dropped_messages == 8


def test_a_system_message_inside_the_transcript_is_kept() -> None:
    note = ChatMessage("system", "The user switched to the coder agent.")
    messages = [SYSTEM, user("one"), note, said("ok"), user("two")]

    fitted = fit(messages, cost([SYSTEM, note, user("two")]))

    assert fitted.messages == (SYSTEM, note, user("two"))
    assert fitted.dropped_messages == 2


def test_without_a_user_message_nothing_is_dropped() -> None:
    messages = [SYSTEM, calls("x"), result("x"), said("done")]

    fitted = fit(messages, 1)

    assert fitted.messages == tuple(messages)
    assert fitted.over_budget


def test_a_transcript_starting_mid_turn_can_lose_its_head() -> None:
    # What a transcript already trimmed elsewhere may look like: no opening user message.
    messages = [SYSTEM, said("earlier answer " + "e" * 200), user("now")]

    fitted = fit(messages, cost([SYSTEM, user("now")]))

    assert fitted.messages == (SYSTEM, user("now"))


def test_the_offered_tools_count_and_are_never_dropped() -> None:
    tools = [ToolSpec("write_file", "Write a file. " * 20, {"type": "object"})]
    messages = [SYSTEM, *turn(1), user("now")]

    without = fit(messages, cost(messages))
    with_tools = fit(messages, cost(messages), tools=tools)

    assert without.dropped_messages == 0
    assert with_tools.messages == (SYSTEM, user("now"))
    assert with_tools.tokens == cost([SYSTEM, user("now")]) + estimate_tokens([], tools)


def test_an_anchor_scales_the_estimate() -> None:
    messages = [SYSTEM, *turn(1), user("now")]
    raw = cost(messages)
    previous = [SYSTEM, user("before")]
    doubled = Anchor.of(2 * cost(previous), previous)

    assert doubled.scale == 2.0
    plain = fit(messages, raw)
    scaled = fit(messages, raw, anchor=doubled)

    assert plain.dropped_messages == 0
    assert scaled.messages == (SYSTEM, user("now"))
    assert scaled.tokens == 2 * cost([SYSTEM, user("now")])
    assert scaled.dropped_tokens == 2 * cost(turn(1))
    assert scaled.raw_tokens == cost([SYSTEM, user("now")])


def test_a_small_anchor_lets_more_fit() -> None:
    messages = [SYSTEM, *turn(1), user("now")]
    half = Anchor(prompt_tokens=50, estimated_tokens=100)

    assert fit(messages, cost(messages) // 2 + 1, anchor=half).dropped_messages == 0
    assert fit(messages, cost(messages) // 2 + 1).dropped_messages == len(turn(1))


@pytest.mark.parametrize(
    ("prompt_tokens", "estimated", "scale"),
    [
        (1_000_000, 10, MAX_SCALE),
        (1, 1_000, MIN_SCALE),
        (0, 100, 1.0),
        (100, 0, 1.0),
        (150, 100, 1.5),
    ],
)
def test_the_anchor_s_scale_is_clamped_and_ignores_missing_usage(
    prompt_tokens: int, estimated: int, scale: float
) -> None:
    assert Anchor(prompt_tokens, estimated).scale == scale


def test_the_next_anchor_comes_from_the_fit_without_a_second_pass() -> None:
    messages = [SYSTEM, *turn(1), user("now")]
    tools = [ToolSpec("read_file", "Read a file.", {"type": "object"})]

    fitted = fit(messages, 10_000, tools=tools)

    assert fitted.anchor(321) == Anchor.of(321, fitted.messages, tools)


def test_the_estimate_is_characters_over_four_plus_framing() -> None:
    text = ChatMessage("user", "a" * 400)
    call = ToolCall("call_1", "write_file", {"path": "é.py"})
    tool_call = ChatMessage("assistant", None, tool_calls=(call,))
    answer = ChatMessage("tool", "b" * 7, tool_call_id="call_1")
    wire = len("call_1") + len("write_file") + len(json.dumps(call.arguments))

    assert estimate_tokens([text]) == MESSAGE_OVERHEAD_TOKENS + 400 // CHARS_PER_TOKEN
    assert estimate_tokens([tool_call]) == 2 * MESSAGE_OVERHEAD_TOKENS + -(-wire // 4)
    assert estimate_tokens([answer]) == MESSAGE_OVERHEAD_TOKENS + -(-(7 + 6) // 4)
    assert json.dumps(call.arguments) == '{"path": "\\u00e9.py"}'  # as the wire encodes it


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        fit([SYSTEM, user("hi")], 0)


def test_an_empty_request_fits() -> None:
    fitted = fit([], 1)

    assert fitted.messages == ()
    assert (fitted.tokens, fitted.dropped_messages, fitted.over_budget) == (0, 0, False)


def assert_pairs_intact(messages: tuple[ChatMessage, ...]) -> None:
    """Every tool result follows its call, and every call's results are all there."""
    open_calls: set[str] = set()
    for message in messages:
        open_calls.update(call.id for call in message.tool_calls)
        if message.role == "tool":
            assert message.tool_call_id in open_calls
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    assert open_calls == answered
