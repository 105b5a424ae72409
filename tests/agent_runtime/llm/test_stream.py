"""LLMStreamService: every model call is one ``chat <model>`` span under its agent, with the
response's details, and one duration and two token points, recorded once per call."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from tests.support.otel import Telemetered

import telemetry
from agent_runtime.agents import AGENTS
from agent_runtime.llm import SCRIPTED_MODEL, ChatMessage, ModelError, OpenAIChatModel
from agent_runtime.llm.stream import LLMStreamService, ModelTurn
from telemetry import names as n

CHAT = f"chat {SCRIPTED_MODEL}"


async def _call(
    hub: telemetry.Telemetry, model: OpenAIChatModel, agent: str, text: str
) -> tuple[ModelTurn, telemetry.AgentRun]:
    request = hub.spans.request("s1")
    run = hub.spans.agent(agent, conversation_id="s1", parent=request.context)
    turn = ModelTurn()
    try:
        async for _ in LLMStreamService(model).stream(
            run, AGENTS[agent], [ChatMessage("user", text)], [], turn
        ):
            pass
    finally:
        run.stop()
        request.stop(n.OUTCOME_COMPLETED)
    return turn, run


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_model_call_is_a_chat_span_under_its_agent_with_usage(
    hub: telemetry.Telemetry, telemetered: Telemetered, model: OpenAIChatModel
) -> None:
    turn, _ = await _call(hub, model, "ask", "What time is it?")

    chat = telemetered.span(CHAT)
    agent = telemetered.span("invoke_agent ask")
    attributes = dict(chat.attributes or {})
    assert agent.context is not None
    assert _parent_id(chat) == agent.context.span_id
    assert chat.kind is SpanKind.CLIENT
    assert chat.status.status_code is StatusCode.UNSET
    assert turn.usage is not None
    assert attributes[n.GEN_AI_OPERATION_NAME] == n.OPERATION_CHAT
    assert attributes[n.GEN_AI_PROVIDER_NAME] == "openai"
    assert attributes[n.GEN_AI_REQUEST_MODEL] == SCRIPTED_MODEL
    assert attributes[n.GEN_AI_RESPONSE_MODEL] == SCRIPTED_MODEL
    assert attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert str(attributes[n.GEN_AI_RESPONSE_ID]).startswith("chatcmpl-")
    assert attributes[n.GEN_AI_USAGE_INPUT_TOKENS] == turn.usage.input_tokens
    assert attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] == turn.usage.output_tokens
    assert attributes[n.SERVER_ADDRESS] == "scripted.invalid"
    assert attributes[n.GEN_AI_CONVERSATION_ID] == "s1"
    assert 0 < float(attributes[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]) < 60  # type: ignore[arg-type]


async def test_each_call_records_one_duration_and_one_point_per_token_type(
    hub: telemetry.Telemetry, telemetered: Telemetered, model: OpenAIChatModel
) -> None:
    await _call(hub, model, "ask", "What time is it?")
    await _call(hub, model, "ask", "And the date?")

    chat = {n.GEN_AI_OPERATION_NAME: n.OPERATION_CHAT, n.GEN_AI_RESPONSE_MODEL: SCRIPTED_MODEL}
    assert telemetered.metric(n.METRIC_CLIENT_OPERATION_DURATION, chat) == 2
    tokens = n.METRIC_CLIENT_TOKEN_USAGE
    assert telemetered.metric(tokens, {**chat, n.GEN_AI_TOKEN_TYPE: "input"}) == 2
    assert telemetered.metric(tokens, {**chat, n.GEN_AI_TOKEN_TYPE: "output"}) == 2


async def test_metrics_are_recorded_when_the_trace_is_not_sampled(
    hub: telemetry.Telemetry, unsampled: Telemetered, model: OpenAIChatModel
) -> None:
    await _call(hub, model, "ask", "What time is it?")

    assert unsampled.spans() == []
    assert unsampled.metric(n.METRIC_CLIENT_OPERATION_DURATION) == 1


async def test_a_provider_failure_marks_the_chat_span_and_its_metric_as_an_error(
    hub: telemetry.Telemetry, telemetered: Telemetered, model: OpenAIChatModel
) -> None:
    with pytest.raises(ModelError):
        await _call(hub, model, "ask", "hi [fail]")

    chat = telemetered.span(CHAT)
    error = dict(chat.attributes or {})[n.ERROR_TYPE]
    assert chat.status.status_code is StatusCode.ERROR
    assert error == "agent_runtime.llm.base.ModelError"
    assert telemetered.metric(n.METRIC_CLIENT_OPERATION_DURATION, {n.ERROR_TYPE: error}) == 1


async def test_a_consumer_leaving_mid_stream_ends_the_chat_span_without_an_error(
    hub: telemetry.Telemetry, telemetered: Telemetered, model: OpenAIChatModel
) -> None:
    request = hub.spans.request("s1")
    run = hub.spans.agent("ask", conversation_id="s1", parent=request.context)
    deltas = LLMStreamService(model).stream(
        run, AGENTS["ask"], [ChatMessage("user", "What time is it?")], [], ModelTurn()
    )
    assert await anext(deltas)
    await deltas.aclose()  # what a disconnected SSE client does to the generator
    run.stop(n.OUTCOME_DISCONNECTED)
    request.stop(n.OUTCOME_DISCONNECTED)

    chat = telemetered.span(CHAT)
    assert chat.status.status_code is StatusCode.UNSET
    assert n.GEN_AI_USAGE_INPUT_TOKENS not in (chat.attributes or {})
    assert telemetered.metric(n.METRIC_CLIENT_OPERATION_DURATION) == 1
