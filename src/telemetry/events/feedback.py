"""A person's feedback on an answer: the GenAI conventions' ``gen_ai.evaluation.result``.

Not a span event: the answer's request ended before anyone rated it, and an ended span takes
no more events. Its OTel form is a log record in the evaluated request's trace, parented to
that request's ``agent.request`` span (the conventions ask for the evaluated operation's
span), which the audit trail emits when it ships the event's record; the emit call gets that
span as ``origin``. The score is also a histogram point (``gen_ai.evaluation.score``, by
evaluation name, label and agent: never by trace or session).

The comment is content: its length and digest are always recorded, its text (scrubbed of
secrets, truncated) only with content capture on, as ``gen_ai.evaluation.explanation``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from telemetry import names as n
from telemetry.events._base import Attributes, TelemetryEvent
from telemetry.redaction import digest, safe_content
from telemetry.settings import TelemetrySettings


class FeedbackGiven(TelemetryEvent):
    """A person rated an answer: ``score`` in [0, 1] (1 the best), an optional low-cardinality
    ``label`` ("up", "down", "correct"...), an optional free-text ``comment``, under the
    evaluation's name (``user_feedback`` unless the caller says otherwise). ``agent`` is the
    agent that gave the answer.

    Audited (record type ``user_feedback``) and acknowledged to a human, so its record is
    committed with the feedback's row before the answer is sent.
    """

    name: ClassVar[str] = n.EVENT_EVALUATION_RESULT
    on_span: ClassVar[bool] = False
    audited: ClassVar[bool] = True
    durable_before_ack: ClassVar[bool] = True
    audit_type: ClassVar[str] = n.AUDIT_USER_FEEDBACK
    feedback_id: str
    evaluation: str
    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    label: str | None = None
    comment: str | None = None
    agent: str | None = None

    def attributes(self, settings: TelemetrySettings) -> Attributes:
        attrs: Attributes = {
            n.GEN_AI_EVALUATION_NAME: self.evaluation,
            n.GEN_AI_EVALUATION_SCORE_VALUE: self.score,
            n.FEEDBACK_ID: self.feedback_id,
        }
        if self.label is not None:
            attrs[n.GEN_AI_EVALUATION_SCORE_LABEL] = self.label
        if self.agent is not None:
            attrs[n.GEN_AI_AGENT_NAME] = self.agent
        if self.comment is not None:
            attrs[f"{n.FEEDBACK_COMMENT}_length"] = len(self.comment)
            attrs[f"{n.FEEDBACK_COMMENT}_sha256"] = digest(self.comment)
            if settings.capture_content:
                attrs[n.GEN_AI_EVALUATION_EXPLANATION] = safe_content(
                    self.comment, settings.capture_max_length
                )
        return attrs

    def audit_details(self, settings: TelemetrySettings) -> dict[str, Any]:
        """The comment is kept as a decision's feedback is: scrubbed and truncated, unless the
        deployment keeps no content in its audit store (``AGENT_RUNTIME_AUDIT_ARGUMENTS``)."""
        comment = None
        if settings.audit_arguments and self.comment is not None:
            comment = safe_content(self.comment, settings.capture_max_length)
        return {
            "feedback_id": self.feedback_id,
            "name": self.evaluation,
            "score": self.score,
            "label": self.label,
            "agent": self.agent,
            "comment": comment,
        }

    def summary(self) -> str:
        label = f" ({self.label})" if self.label else ""
        agent = f" for {self.agent}" if self.agent else ""
        return f"{self.evaluation}: score={self.score:g}{label}{agent}"
