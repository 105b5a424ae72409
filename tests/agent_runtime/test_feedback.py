"""FeedbackService on a runtime driven in process (scripted model): every request is
remembered with its agent.request span when it ends; a rating of its answer is stored, audited
and emitted as gen_ai.evaluation.result in that trace, under that span."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan

from agent_runtime.errors import InvalidFeedback, SessionNotFound, StoreUnavailable, TraceNotFound
from agent_runtime.feedback import COMMENT_MAX_LENGTH, check_feedback
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from telemetry import names as n
from tests.support.otel import Telemetered

SECRET = "sk-" + "feedbacktest0123456789"


@pytest.fixture
async def runtime(telemetered: Telemetered, tmp_path: Path) -> AsyncIterator[Runtime]:
    started = await Runtime.start(Settings(data_dir=tmp_path / "data"))
    yield started
    await started.close()


async def _answer(runtime: Runtime, session_id: str, message: str = "What is a closure?") -> str:
    """Run one message to its end; its correlation id (the trace id)."""
    correlation = ""
    async for event in runtime.orchestrator.handle(session_id, message):
        if event.event == "meta":
            correlation = event.data["correlation_id"]
        if event.event == "approval_required":
            await runtime.decide(event.data["call_id"], "APPROVE", arguments=None, feedback=None)
    return correlation


def _request_span(telemetered: Telemetered, trace_id: str) -> ReadableSpan:
    (span,) = [
        s
        for s in telemetered.spans()
        if s.name == n.SPAN_AGENT_REQUEST and f"{s.context.trace_id:032x}" == trace_id
    ]
    return span


def _evaluations(telemetered: Telemetered) -> list[ReadableLogRecord]:
    return [
        log for log in telemetered.logs() if log.log_record.event_name == n.EVENT_EVALUATION_RESULT
    ]


def _score_points(telemetered: Telemetered) -> list[dict[str, Any]]:
    data = telemetered.metric_reader.get_metrics_data()
    return [
        dict(point.attributes or {})
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == n.METRIC_EVALUATION_SCORE
        for point in metric.data.data_points
    ]


async def test_a_rating_lands_in_the_evaluated_trace_under_its_request_span(
    runtime: Runtime, telemetered: Telemetered
) -> None:
    trace_id = await _answer(runtime, "fb-1")
    request = _request_span(telemetered, trace_id)
    stored = await runtime.feedback.rate(
        trace_id.upper(), score=0, label="thumbs-down", comment=f"wrong, my key is {SECRET}"
    )
    assert (stored.trace_id, stored.span_id) == (trace_id, f"{request.context.span_id:016x}")
    assert (stored.session_id, stored.agent, stored.name) == ("fb-1", "ask", "user_feedback")
    assert stored.comment == f"wrong, my key is {SECRET}"  # the row keeps what the person wrote

    await runtime.telemetry.flush()
    (log,) = _evaluations(telemetered)
    record = log.log_record
    assert record.trace_id == request.context.trace_id
    assert record.span_id == request.context.span_id
    attributes = dict(record.attributes or {})
    assert attributes[n.GEN_AI_EVALUATION_NAME] == "user_feedback"
    assert attributes[n.GEN_AI_EVALUATION_SCORE_VALUE] == 0.0
    assert attributes[n.GEN_AI_EVALUATION_SCORE_LABEL] == "thumbs-down"
    assert attributes[n.GEN_AI_AGENT_NAME] == "ask"
    assert attributes[n.AUDIT_EVENT_TYPE] == n.AUDIT_USER_FEEDBACK
    assert attributes[n.SESSION_ID] == "fb-1"
    # Content capture is off: the comment's length, never its text.
    assert n.GEN_AI_EVALUATION_EXPLANATION not in attributes
    assert SECRET not in repr(attributes) and "wrong" not in str(record.body)

    # The reader is the test session's (cumulative): other tests' points may be there too,
    # with their own labels; this rating's is the one point under its label.
    (point,) = [
        p for p in _score_points(telemetered) if p[n.GEN_AI_EVALUATION_SCORE_LABEL] == "thumbs-down"
    ]
    assert point == {
        n.GEN_AI_EVALUATION_NAME: "user_feedback",
        n.GEN_AI_EVALUATION_SCORE_LABEL: "thumbs-down",
        n.GEN_AI_AGENT_NAME: "ask",
    }  # never a trace or session id
    assert runtime.telemetry.metrics.get_metrics()["feedback"] == {
        "ask": {"count": 1, "mean_score": 0.0}
    }
    assert runtime.telemetry.audit is not None
    (audited,) = await runtime.telemetry.audit.aget_audit_log(event_type="user_feedback")
    assert (audited["trace_id"], audited["span_id"]) == (trace_id, stored.span_id)
    assert audited["feedback_id"] == stored.feedback_id
    assert audited["comment"] == "wrong, my key is [REDACTED]"
    timeline = runtime.telemetry.timeline(trace_id) or []
    assert timeline[-1].event == n.EVENT_EVALUATION_RESULT


async def test_a_trace_is_rated_as_often_as_people_like_and_read_per_session(
    runtime: Runtime,
) -> None:
    first, second = await _answer(runtime, "fb-many"), await _answer(runtime, "fb-many")
    await runtime.feedback.rate(first, score=1)
    await runtime.feedback.rate(first, score=0.5, name="helpfulness")
    await runtime.feedback.rate(second, score=1, label="up")
    rated = await runtime.feedback.of_session("fb-many")
    assert [(r.trace_id, r.name, r.score) for r in rated] == [
        (first, "user_feedback", 1.0),
        (first, "helpfulness", 0.5),
        (second, "user_feedback", 1.0),
    ]
    feedback = runtime.telemetry.metrics.get_metrics()["feedback"]
    assert feedback["ask"]["count"] == 3
    assert math.isclose(feedback["ask"]["mean_score"], 2.5 / 3, abs_tol=1e-4)


async def test_a_rating_with_capture_on_exports_the_comment_scrubbed_and_truncated(
    capture_on: None, runtime: Runtime, telemetered: Telemetered
) -> None:
    trace_id = await _answer(runtime, "fb-capture")
    await runtime.feedback.rate(trace_id, score=1, comment=f"great, {SECRET} " + "x" * 2000)
    await runtime.telemetry.flush()
    (log,) = _evaluations(telemetered)
    explanation = str((log.log_record.attributes or {})[n.GEN_AI_EVALUATION_EXPLANATION])
    assert explanation.startswith("great, [REDACTED] xxx") and SECRET not in explanation
    assert "[truncated" in explanation and len(explanation) < 1100


async def test_a_request_whose_trace_was_not_sampled_can_still_be_rated(
    unsampled: Telemetered, runtime: Runtime
) -> None:
    trace_id = await _answer(runtime, "fb-unsampled")
    assert unsampled.spans() == []
    stored = await runtime.feedback.rate(trace_id, score=1)
    await runtime.telemetry.flush()
    (log,) = _evaluations(unsampled)
    assert f"{log.log_record.trace_id:032x}" == trace_id
    assert f"{log.log_record.span_id:016x}" == stored.span_id


async def test_a_run_paused_for_a_human_and_resumed_elsewhere_is_rateable_in_both_traces(
    runtime: Runtime,
) -> None:
    stream = runtime.orchestrator.handle("fb-resume", "Create a sorting function")
    try:
        async for event in stream:
            if event.event == "meta":
                waiting_trace = event.data["correlation_id"]
            if event.event == "approval_required":
                call_id = event.data["call_id"]
                break
    finally:
        await stream.aclose()  # the client went away; the approval stays pending
    answer = await runtime.decide(call_id, "APPROVE", arguments=None, feedback=None)
    assert answer["resumed"] == "here" and answer["trace_id"] != waiting_trace
    paused = await runtime.feedback.rate(waiting_trace, score=0)
    resumed = await runtime.feedback.rate(answer["trace_id"], score=1)
    assert (paused.agent, resumed.agent) == ("coder", "coder")
    assert paused.span_id != resumed.span_id


async def test_an_unknown_or_malformed_trace_has_nothing_to_rate(runtime: Runtime) -> None:
    for trace_id in ("f" * 32, "0" * 32, "not-a-trace", "a" * 31):
        with pytest.raises(TraceNotFound):
            await runtime.feedback.rate(trace_id, score=1)


async def test_a_deleted_sessions_answers_can_no_longer_be_rated(runtime: Runtime) -> None:
    trace_id = await _answer(runtime, "fb-deleted")
    await runtime.sessions.delete("fb-deleted")
    with pytest.raises(TraceNotFound):
        await runtime.feedback.rate(trace_id, score=1)
    with pytest.raises(SessionNotFound):
        await runtime.sessions.get("fb-deleted")


@pytest.mark.parametrize(
    ("score", "label", "comment", "name"),
    [
        (-0.01, None, None, "user_feedback"),
        (1.01, None, None, "user_feedback"),
        (math.nan, None, None, "user_feedback"),
        (True, None, None, "user_feedback"),
        (1, "x" * 33, None, "user_feedback"),
        (1, "thumbs up", None, "user_feedback"),
        (1, None, "x" * (COMMENT_MAX_LENGTH + 1), "user_feedback"),
        (1, None, "nul\x00", "user_feedback"),
        (1, None, None, ""),
        (1, None, None, "n" * 65),
    ],
)
def test_feedback_outside_its_limits_is_refused(
    score: float, label: str | None, comment: str | None, name: str
) -> None:
    with pytest.raises(InvalidFeedback):
        check_feedback(score, label, comment, name)


def test_feedback_at_its_limits_is_accepted() -> None:
    check_feedback(0, "a" * 32, "x" * COMMENT_MAX_LENGTH, "n" * 64)
    check_feedback(1.0, None, None, "user_feedback")


async def test_a_store_that_cannot_remember_a_request_costs_only_its_rating(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(record: object) -> None:
        raise StoreUnavailable()

    monkeypatch.setattr(runtime.store, "record_request", refuse)
    events = [e async for e in runtime.orchestrator.handle("fb-refused", "What is a closure?")]
    assert events[-1].event == "done" and events[-1].data["outcome"] == "completed"
    with pytest.raises(TraceNotFound):
        await runtime.feedback.rate(events[0].data["correlation_id"], score=1)
