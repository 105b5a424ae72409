"""``POST /v1/traces/{trace_id}/feedback`` over real HTTP, on both stores: 201 with the
stored rating; the rating in the session, the audit and the metrics; the
``gen_ai.evaluation.result`` log record in the rated trace under its ``agent.request`` span,
after a restart too; 404 and 422 for what cannot be rated; the key like every route; and the
LLM_PROVIDER=openai path."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk._logs import ReadableLogRecord

from agent_runtime.app import create_app
from agent_runtime.settings import Settings
from telemetry import names as n
from tests.service.conftest import KEY, Conversation
from tests.support.openai_server import ChatServer, scripted_responder
from tests.support.otel import Telemetered
from tests.support.server import RunningServer, serve

ASK = "What is a closure?"


@pytest.fixture
def running(
    telemetered: Telemetered, make_settings: Callable[..., Settings]
) -> Iterator[RunningServer]:
    with serve(create_app(make_settings())) as server:
        yield server


@pytest.fixture
async def http(running: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
        yield client


async def _answer(http: httpx.AsyncClient, session_id: str, message: str = ASK) -> str:
    conversation = Conversation(http)
    await conversation.send(session_id, message, decide={"decision": "APPROVE"})
    assert conversation.of("done")[0]["outcome"] == "completed"
    assert conversation.headers is not None
    correlation_id = conversation.headers["x-correlation-id"]
    assert conversation.of("meta")[0]["correlation_id"] == correlation_id
    return correlation_id


def _request_span_id(telemetered: Telemetered, trace_id: str) -> int:
    (span,) = [
        s
        for s in telemetered.spans()
        if s.name == n.SPAN_AGENT_REQUEST and f"{s.context.trace_id:032x}" == trace_id
    ]
    return span.context.span_id


def _evaluation(telemetered: Telemetered, feedback_id: str) -> ReadableLogRecord:
    """The rating's log record: the server's audit flusher ships it within moments."""
    deadline = time.monotonic() + 10
    while True:
        for log in telemetered.logs():
            attributes = log.log_record.attributes or {}
            if attributes.get(n.FEEDBACK_ID) == feedback_id:
                return log
        assert time.monotonic() < deadline, "no gen_ai.evaluation.result log record"
        time.sleep(0.01)


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert "Traceback" not in response.text


async def test_a_rating_is_stored_and_shown_with_the_session_audit_and_metrics(
    http: httpx.AsyncClient, telemetered: Telemetered
) -> None:
    trace_id = await _answer(http, "fb-http")
    response = await http.post(
        f"/v1/traces/{trace_id}/feedback",
        json={"score": 1, "label": "up", "comment": "exactly what I needed"},
    )
    assert response.status_code == 201, response.text
    stored = response.json()
    span_id = f"{_request_span_id(telemetered, trace_id):016x}"
    assert {k: v for k, v in stored.items() if k not in ("feedback_id", "created_at")} == {
        "trace_id": trace_id,
        "span_id": span_id,
        "session_id": "fb-http",
        "agent": "ask",
        "name": "user_feedback",
        "score": 1.0,
        "label": "up",
        "comment": "exactly what I needed",
    }

    session = (await http.get("/v1/sessions/fb-http")).json()
    assert session["feedback"] == [stored]
    audit = (await http.get("/v1/audit", params={"event_type": "user_feedback"})).json()
    assert [(r["feedback_id"], r["trace_id"], r["span_id"]) for r in audit] == [
        (stored["feedback_id"], trace_id, span_id)
    ]
    by_otel_name = await http.get("/v1/audit", params={"event_type": n.EVENT_EVALUATION_RESULT})
    assert by_otel_name.json() == audit
    metrics = (await http.get("/v1/metrics")).json()
    assert metrics["feedback"] == {"ask": {"count": 1, "mean_score": 1.0}}
    assert {"agent_switches", "agent_processing", "tool_executions", "hitl_decisions"} <= set(
        metrics
    )

    record = _evaluation(telemetered, stored["feedback_id"]).log_record
    assert record.event_name == n.EVENT_EVALUATION_RESULT
    assert f"{record.trace_id:032x}" == trace_id
    assert f"{record.span_id:016x}" == span_id
    assert (record.attributes or {})[n.GEN_AI_EVALUATION_SCORE_VALUE] == 1.0


async def test_after_a_restart_the_rating_lands_under_the_request_span(
    telemetered: Telemetered, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    with serve(create_app(settings)) as first:
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
            trace_id = await _answer(client, "fb-restart", "Create a sorting function")
    span_id = _request_span_id(telemetered, trace_id)
    with serve(create_app(settings)) as second:
        async with httpx.AsyncClient(base_url=second.url, timeout=30) as client:
            response = await client.post(
                f"/v1/traces/{trace_id}/feedback", json={"score": 0.25, "name": "helpfulness"}
            )
            assert response.status_code == 201, response.text
            session = (await client.get("/v1/sessions/fb-restart")).json()
    stored = response.json()
    assert (stored["agent"], stored["span_id"]) == ("coder", f"{span_id:016x}")
    assert [f["feedback_id"] for f in session["feedback"]] == [stored["feedback_id"]]
    record = _evaluation(telemetered, stored["feedback_id"]).log_record
    assert (record.trace_id, record.span_id) == (int(trace_id, 16), span_id)
    assert (record.attributes or {})[n.GEN_AI_EVALUATION_NAME] == "helpfulness"


BAD_BODIES: list[Any] = [
    {},
    {"score": 1.5},
    {"score": -0.5},
    {"score": True},
    {"score": "1"},
    {"score": None},
    {"score": 1, "label": "x" * 33},
    {"score": 1, "label": "not a token"},
    {"score": 1, "comment": "x" * 4001},
    {"score": 1, "comment": "nul \x00"},
    {"score": 1, "comment": 5},
    {"score": 1, "name": ""},
    {"score": 1, "stars": 5},
    [1],
]


async def test_feedback_outside_its_limits_is_422(http: httpx.AsyncClient) -> None:
    trace_id = await _answer(http, "fb-bad")
    for body in BAD_BODIES:
        response = await http.post(f"/v1/traces/{trace_id}/feedback", json=body)
        _assert_error(response, 422, "validation_error")
    session = (await http.get("/v1/sessions/fb-bad")).json()
    assert session["feedback"] == []
    at_the_limits = {"score": 0, "label": "a" * 32, "comment": "x" * 4000, "name": "n" * 64}
    accepted = await http.post(f"/v1/traces/{trace_id}/feedback", json=at_the_limits)
    assert accepted.status_code == 201, accepted.text


async def test_a_trace_the_service_never_served_is_404_and_a_malformed_id_422(
    http: httpx.AsyncClient,
) -> None:
    unknown = await http.post(f"/v1/traces/{'ab' * 16}/feedback", json={"score": 1})
    _assert_error(unknown, 404, "trace_not_found")
    zeros = await http.post(f"/v1/traces/{'0' * 32}/feedback", json={"score": 1})
    _assert_error(zeros, 404, "trace_not_found")
    for malformed in ("xyz", "a" * 31, "g" * 32):
        response = await http.post(f"/v1/traces/{malformed}/feedback", json={"score": 1})
        _assert_error(response, 422, "validation_error")
    malformed_json = await http.post(
        f"/v1/traces/{'ab' * 16}/feedback",
        content=b'{"score": ',
        headers={"content-type": "application/json"},
    )
    _assert_error(malformed_json, 422, "validation_error")


async def test_a_deleted_sessions_answer_is_404(http: httpx.AsyncClient) -> None:
    trace_id = await _answer(http, "fb-gone")
    assert (await http.delete("/v1/sessions/fb-gone")).status_code == 200
    response = await http.post(f"/v1/traces/{trace_id}/feedback", json={"score": 1})
    _assert_error(response, 404, "trace_not_found")


async def test_feedback_needs_the_internal_key_like_every_route(
    telemetered: Telemetered, make_settings: Callable[..., Settings]
) -> None:
    with serve(create_app(make_settings(internal_key=KEY))) as keyed:
        async with httpx.AsyncClient(base_url=keyed.url, timeout=30) as client:
            good = {"X-Internal-Auth": KEY}
            conversation = Conversation(client)
            await conversation.send("fb-key", ASK, headers=good)
            assert conversation.headers is not None
            url = f"/v1/traces/{conversation.headers['x-correlation-id']}/feedback"
            for headers in ({}, {"X-Internal-Auth": KEY[:-1] + "x"}):
                refused = await client.post(url, json={"score": 1}, headers=headers)
                _assert_error(refused, 401, "unauthorized")
            accepted = await client.post(url, json={"score": 1}, headers=good)
            assert accepted.status_code == 201, accepted.text
            rated = (await client.get("/v1/sessions/fb-key", headers=good)).json()["feedback"]
    assert [f["feedback_id"] for f in rated] == [accepted.json()["feedback_id"]]


async def test_an_answer_of_the_openai_provider_is_rated_in_its_trace(
    telemetered: Telemetered, make_settings: Callable[..., Settings]
) -> None:
    async with ChatServer(scripted_responder) as model:
        settings = make_settings(
            llm_provider="openai",
            openai_base_url=model.base_url,
            openai_api_key="sk-test-feedback-0123456789abcdef",
            openai_model="test-model",
        )
        with serve(create_app(settings)) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                trace_id = await _answer(client, "fb-openai", "Create a sorting function")
                response = await client.post(
                    f"/v1/traces/{trace_id}/feedback",
                    json={"score": 0, "label": "down", "comment": "wrong language"},
                )
                metrics = (await client.get("/v1/metrics")).json()
    assert model.requests, "the model server was never called"
    assert response.status_code == 201, response.text
    stored = response.json()
    assert (stored["agent"], stored["trace_id"]) == ("coder", trace_id)
    assert metrics["feedback"] == {"coder": {"count": 1, "mean_score": 0.0}}
    record = _evaluation(telemetered, stored["feedback_id"]).log_record
    assert f"{record.span_id:016x}" == f"{_request_span_id(telemetered, trace_id):016x}"
    assert (record.attributes or {})[n.GEN_AI_EVALUATION_SCORE_LABEL] == "down"
