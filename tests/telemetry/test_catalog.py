"""The event catalogue (docs/architecture.md): fifteen typed events, their names, flags and
attributes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

import telemetry
from telemetry import names as n
from telemetry.events import TelemetryEvent
from telemetry.redaction import digest

OFF = telemetry.TelemetrySettings()
ARGS = {"path": "sort.py", "content": "x = 1\n"}
ARGS_JSON = '{"content": "x = 1\\n", "path": "sort.py"}'

# One sample of every catalogue class, with its span-event name and its attributes when
# content capture is off (the default).
SAMPLES: dict[type[TelemetryEvent], tuple[TelemetryEvent, str, dict[str, Any]]] = {
    telemetry.AgentProcessingStarted: (
        telemetry.AgentProcessingStarted(agent="coder", session_id="s1"),
        n.EVENT_AGENT_STARTED,
        {n.GEN_AI_AGENT_NAME: "coder"},
    ),
    telemetry.AgentProcessingCompleted: (
        telemetry.AgentProcessingCompleted(
            agent="coder", duration_s=0.25, outcome=n.OUTCOME_COMPLETED, session_id="s1"
        ),
        n.EVENT_AGENT_COMPLETED,
        {n.GEN_AI_AGENT_NAME: "coder", n.AGENT_OUTCOME: n.OUTCOME_COMPLETED},
    ),
    telemetry.AgentErrorOccurred: (
        telemetry.AgentErrorOccurred(
            agent="coder", error_type="RuntimeError", message="boom", session_id="s1"
        ),
        n.EVENT_AGENT_ERROR,
        {n.GEN_AI_AGENT_NAME: "coder", n.ERROR_TYPE: "RuntimeError", n.ERROR_MESSAGE: "boom"},
    ),
    telemetry.AgentSwitched: (
        telemetry.AgentSwitched(
            from_agent="orchestrator",
            to_agent="coder",
            trigger="orchestrator",
            reason="code",
            confidence=0.9,
            session_id="s1",
        ),
        n.EVENT_AGENT_SWITCHED,
        {
            n.SWITCH_FROM: "orchestrator",
            n.SWITCH_TO: "coder",
            n.SWITCH_TRIGGER: "orchestrator",
            n.SWITCH_REASON: "code",
            n.SWITCH_CONFIDENCE: 0.9,
        },
    ),
    telemetry.ToolExecutionRequested: (
        telemetry.ToolExecutionRequested(
            tool="write_file", call_id="c1", agent="coder", arguments=ARGS, session_id="s1"
        ),
        n.EVENT_TOOL_EXECUTION_REQUESTED,
        # No agent: the event lands on that agent's own span, which names it.
        {n.GEN_AI_TOOL_NAME: "write_file", n.GEN_AI_TOOL_CALL_ID: "c1"},
    ),
    telemetry.ToolApprovalRequired: (
        telemetry.ToolApprovalRequired(
            tool="write_file", call_id="c1", reason="writes", session_id="s1"
        ),
        n.EVENT_TOOL_APPROVAL_REQUIRED,
        {
            n.GEN_AI_TOOL_NAME: "write_file",
            n.GEN_AI_TOOL_CALL_ID: "c1",
            n.APPROVAL_REASON: "writes",
        },
    ),
    telemetry.HITLApprovalRequested: (
        telemetry.HITLApprovalRequested(
            tool="write_file", call_id="c1", timeout_s=300.0, session_id="s1"
        ),
        n.EVENT_HITL_APPROVAL_REQUESTED,
        {
            n.GEN_AI_TOOL_NAME: "write_file",
            n.GEN_AI_TOOL_CALL_ID: "c1",
            n.APPROVAL_TIMEOUT_S: 300.0,
        },
    ),
    telemetry.HITLDecisionMade: (
        telemetry.HITLDecisionMade(
            tool="write_file",
            call_id="c1",
            decision="EDIT",
            modified=True,
            wait_s=1.5,
            feedback="use a list",
            session_id="s1",
        ),
        n.EVENT_HITL_DECISION_MADE,
        {
            n.GEN_AI_TOOL_NAME: "write_file",
            n.GEN_AI_TOOL_CALL_ID: "c1",
            n.HITL_DECISION: "EDIT",
            n.HITL_MODIFIED: True,
            n.HITL_WAIT_MS: 1500.0,
            n.HITL_OUTCOME: "decided",
            f"{n.HITL_FEEDBACK}_length": len("use a list"),
            f"{n.HITL_FEEDBACK}_sha256": digest("use a list"),
        },
    ),
    telemetry.SessionCreated: (
        telemetry.SessionCreated(session_id="s1"),
        n.EVENT_SESSION_CREATED,
        {n.SESSION_ID: "s1"},
    ),
    telemetry.MessageAdded: (
        telemetry.MessageAdded(session_id="s1", role="user", content="hello"),
        n.EVENT_MESSAGE_ADDED,
        {n.MESSAGE_ROLE: "user", n.MESSAGE_CONTENT_LENGTH: 5},
    ),
    telemetry.SessionUpdated: (
        telemetry.SessionUpdated(session_id="s1", agent="coder"),
        n.EVENT_SESSION_UPDATED,
        {n.GEN_AI_AGENT_NAME: "coder"},
    ),
    telemetry.SessionDeleted: (
        telemetry.SessionDeleted(session_id="s1"),
        n.EVENT_SESSION_DELETED,
        {n.SESSION_ID: "s1"},
    ),
    telemetry.ToolExecutionCompleted: (
        telemetry.ToolExecutionCompleted(
            tool="write_file", call_id="c1", outcome="completed", session_id="s1"
        ),
        "tool.execution_completed",
        {},
    ),
    telemetry.ContextTrimmed: (
        telemetry.ContextTrimmed(
            agent="coder",
            dropped_messages=4,
            dropped_tokens=900,
            sent_tokens=1000,
            budget_tokens=1024,
            session_id="s1",
        ),
        "agent_runtime.context.trimmed",
        {
            n.GEN_AI_AGENT_NAME: "coder",
            n.CONTEXT_DROPPED_MESSAGES: 4,
            n.CONTEXT_DROPPED_TOKENS: 900,
            n.CONTEXT_SENT_TOKENS: 1000,
            n.CONTEXT_BUDGET_TOKENS: 1024,
            n.CONTEXT_OVER_BUDGET: False,
        },
    ),
    telemetry.FeedbackGiven: (
        telemetry.FeedbackGiven(
            feedback_id="f1",
            evaluation="user_feedback",
            score=0.0,
            label="down",
            comment="wrong file",
            agent="coder",
            session_id="s1",
        ),
        n.EVENT_EVALUATION_RESULT,
        {
            n.GEN_AI_EVALUATION_NAME: "user_feedback",
            n.GEN_AI_EVALUATION_SCORE_VALUE: 0.0,
            n.GEN_AI_EVALUATION_SCORE_LABEL: "down",
            n.GEN_AI_AGENT_NAME: "coder",
            n.FEEDBACK_ID: "f1",
            f"{n.FEEDBACK_COMMENT}_length": len("wrong file"),
            f"{n.FEEDBACK_COMMENT}_sha256": digest("wrong file"),
        },
    ),
}

# docs/architecture.md's catalogue: span starts/ends are not span events (nor is feedback on an
# ended request); these seven are audited.
NOT_ON_SPAN = {
    telemetry.AgentProcessingStarted,
    telemetry.AgentProcessingCompleted,
    telemetry.AgentErrorOccurred,
    telemetry.ToolExecutionCompleted,
    telemetry.FeedbackGiven,
}
AUDITED = {
    telemetry.AgentSwitched,
    telemetry.ToolApprovalRequired,
    telemetry.HITLApprovalRequested,
    telemetry.HITLDecisionMade,
    telemetry.AgentErrorOccurred,
    telemetry.SessionDeleted,
    telemetry.FeedbackGiven,
}
# The audited events that acknowledge a human action: committed before emit returns.
DURABLE_BEFORE_ACK = {telemetry.HITLDecisionMade, telemetry.SessionDeleted, telemetry.FeedbackGiven}


def test_catalog_holds_the_seeds_twelve_events_the_tool_end_the_trim_and_feedback() -> None:
    assert len(telemetry.CATALOG) == 15
    assert set(telemetry.CATALOG) == set(SAMPLES)
    assert len({cls.name for cls in telemetry.CATALOG}) == 15


@pytest.mark.parametrize("cls", telemetry.CATALOG, ids=lambda cls: cls.__name__)
def test_event_name_and_attributes_without_capture(cls: type[TelemetryEvent]) -> None:
    event, name, attributes = SAMPLES[cls]
    assert cls.name == name
    assert event.attributes(OFF) == attributes


@pytest.mark.parametrize("cls", telemetry.CATALOG, ids=lambda cls: cls.__name__)
def test_on_span_and_audited_flags_follow_the_design_table(cls: type[TelemetryEvent]) -> None:
    assert cls.on_span is (cls not in NOT_ON_SPAN)
    assert cls.audited is (cls in AUDITED)
    assert cls.durable_before_ack is (cls in DURABLE_BEFORE_ACK)


@pytest.mark.parametrize("cls", telemetry.CATALOG, ids=lambda cls: cls.__name__)
def test_summary_is_a_string(cls: type[TelemetryEvent]) -> None:
    assert isinstance(SAMPLES[cls][0].summary(), str)


def test_events_are_immutable_and_reject_unknown_fields() -> None:
    event = telemetry.SessionCreated(session_id="s1")
    with pytest.raises(ValidationError):
        event.session_id = "s2"
    with pytest.raises(ValidationError):
        telemetry.SessionCreated(session_id="s1", colour="red")  # type: ignore[call-arg]


def test_tool_arguments_must_be_a_dict_and_are_kept_as_given() -> None:
    arguments = {"path": "a.py"}
    event = telemetry.ToolExecutionRequested(
        tool="write_file", call_id="c", agent="coder", arguments=arguments
    )
    assert event.arguments is arguments
    assert telemetry.ToolExecutionRequested(tool="t", call_id="c", agent="a").arguments == {}
    with pytest.raises(ValidationError):
        telemetry.ToolExecutionRequested(tool="t", call_id="c", agent="a", arguments=["a.py"])  # type: ignore[arg-type]


def test_switch_trigger_and_decision_are_closed_vocabularies() -> None:
    with pytest.raises(ValidationError):
        telemetry.AgentSwitched(from_agent="a", to_agent="b", trigger="robot")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        telemetry.HITLDecisionMade(tool="t", call_id="c", decision="MAYBE")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        telemetry.AgentSwitched(from_agent="a", to_agent="b", trigger="user", confidence=1.5)


def test_processing_completed_success_is_any_outcome_but_error() -> None:
    def completed(outcome: str) -> telemetry.AgentProcessingCompleted:
        return telemetry.AgentProcessingCompleted(agent="a", duration_s=0.0, outcome=outcome)

    assert completed(n.OUTCOME_REJECTED).success
    assert completed(n.OUTCOME_HANDED_OFF).success
    assert not completed(n.OUTCOME_ERROR).success


def test_content_attributes_appear_only_with_capture_on() -> None:
    on = telemetry.TelemetrySettings(capture_content=True)
    message = SAMPLES[telemetry.MessageAdded][0]
    tool = SAMPLES[telemetry.ToolExecutionRequested][0]
    decision = SAMPLES[telemetry.HITLDecisionMade][0]
    assert message.attributes(on)[n.MESSAGE_CONTENT] == "hello"
    assert tool.attributes(on)[n.GEN_AI_TOOL_CALL_ARGUMENTS] == ARGS_JSON
    assert decision.attributes(on)[n.HITL_FEEDBACK] == "use a list"


def test_feedback_comment_is_exported_only_with_capture_on_scrubbed_and_truncated() -> None:
    secret = "sk-" + "a1b2c3d4e5f6g7h8i9"
    event = telemetry.FeedbackGiven(
        feedback_id="f1", evaluation="user_feedback", score=1, comment=f"my key {secret} " * 40
    )
    off = event.attributes(OFF)
    assert n.GEN_AI_EVALUATION_EXPLANATION not in off
    assert off[f"{n.FEEDBACK_COMMENT}_length"] == len(event.comment or "")
    on = event.attributes(telemetry.TelemetrySettings(capture_content=True, capture_max_length=50))
    explanation = str(on[n.GEN_AI_EVALUATION_EXPLANATION])
    assert secret not in explanation and "[REDACTED]" in explanation
    assert explanation.startswith("my key [REDACTED]") and "[truncated" in explanation
    assert event.summary() == "user_feedback: score=1"  # the comment never in the summary


def test_feedback_score_is_bounded_to_zero_and_one() -> None:
    for score in (-0.1, 1.01, float("nan"), float("inf")):
        with pytest.raises(ValidationError):
            telemetry.FeedbackGiven(feedback_id="f", evaluation="e", score=score)


def test_feedback_audit_details_keep_the_comment_only_where_the_store_keeps_content() -> None:
    event = telemetry.FeedbackGiven(
        feedback_id="f1", evaluation="helpful", score=0.5, label="meh", comment="password=hunter2"
    )
    kept = event.audit_details(OFF)
    assert kept == {
        "feedback_id": "f1",
        "name": "helpful",
        "score": 0.5,
        "label": "meh",
        "agent": None,
        "comment": "password=[REDACTED]",
    }
    bare = event.audit_details(telemetry.TelemetrySettings(audit_arguments=False))
    assert bare["comment"] is None
