"""The project's metric instruments, defined once, and the one recorder that feeds them.

Metrics are recorded from every event whatever the sampler decided: counts derived from
sampled spans would be wrong. Attributes are low-cardinality by construction (agent, tool,
decision, outcome, trigger, evaluation name and label: never session or trace ids). The
``gen_ai.*`` duration and token histograms are recorded when an operation ends, by
:mod:`telemetry.operation_metrics`.

Each event is recorded twice, for two readers that want different things: through the SDK's
synchronous instruments (``Counter.add``, ``Histogram.record``) at
the moment it happens, for the exporters (cumulative per meter provider, as OpenTelemetry
defines them, with the SDK's views, temporality and exemplars); and in the application's
exact :class:`telemetry.counts.EventCounts`, which ``get_metrics()`` reads (the seed's query
API answers for one application, not for a process or a provider).

What is a fact of the whole deployment (sessions, sessions running, approvals pending) is
not counted from events, which each replica sees only a part of and a restart forgets: the
gauges of :mod:`telemetry.cluster` report it, read from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.metrics import Counter, Meter

from telemetry import names as n
from telemetry.counts import EventCounts
from telemetry.events import (
    AgentErrorOccurred,
    AgentSwitched,
    ContextTrimmed,
    FeedbackGiven,
    HITLDecisionMade,
    TelemetryEvent,
    ToolApprovalRequired,
    ToolExecutionCompleted,
    ToolExecutionRequested,
)

# Human waits: seconds to many minutes (the default approval timeout is 300 s).
_WAIT_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
# Feedback scores are in [0, 1]: tenths, with 0 (a thumbs down) a bucket of its own.
_SCORE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def dropped_counter(meter: Meter) -> Counter:
    """Telemetry the SDK could not deliver (queue full, export failed), by signal."""
    return meter.create_counter(
        n.METRIC_TELEMETRY_DROPPED,
        unit="{item}",
        description="Spans or log records dropped before export",
    )


class MetricsRecorder:
    """Feeds one application's metrics from its events: the SDK instruments, recorded at once,
    and the exact counts that ``get_metrics()`` reads. One ``record`` call per event; which
    instruments an event feeds is looked up by its exact class (the catalogue's classes are
    final)."""

    def __init__(self, meter: Meter, counts: EventCounts | None = None) -> None:
        self.counts = counts if counts is not None else EventCounts()
        switches = meter.create_counter(
            n.METRIC_AGENT_SWITCHES, unit="{switch}", description="Agent switches"
        )
        tool_calls = meter.create_counter(
            n.METRIC_TOOL_CALLS, unit="{call}", description="Tool calls by outcome"
        )
        decisions = meter.create_counter(
            n.METRIC_HITL_DECISIONS, unit="{decision}", description="Decisions"
        )
        errors = meter.create_counter(
            n.METRIC_ERRORS, unit="{error}", description="Real failures by error.type"
        )
        trimmed = meter.create_counter(
            n.METRIC_CONTEXT_TRIMMED,
            unit="{message}",
            description="Transcript messages left out of model calls by the context budget",
        )
        wait = meter.create_histogram(
            n.METRIC_HITL_WAIT,
            unit="s",
            description="Time a tool call waited for its human decision",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )
        scores = meter.create_histogram(
            n.METRIC_EVALUATION_SCORE,
            unit="1",
            description="Scores people gave the answers, in [0, 1]",
            explicit_bucket_boundaries_advisory=_SCORE_BUCKETS,
        )

        def switched(event: AgentSwitched) -> None:
            switches.add(
                1,
                {
                    n.SWITCH_FROM: event.from_agent,
                    n.SWITCH_TO: event.to_agent,
                    n.SWITCH_TRIGGER: event.trigger,
                },
            )

        def requested(event: ToolExecutionRequested) -> None:
            tool_calls.add(1, {n.GEN_AI_TOOL_NAME: event.tool, n.TOOL_OUTCOME: n.TOOL_REQUESTED})

        def needs_approval(event: ToolApprovalRequired) -> None:
            tool_calls.add(
                1, {n.GEN_AI_TOOL_NAME: event.tool, n.TOOL_OUTCOME: n.TOOL_REQUIRES_APPROVAL}
            )

        def completed(event: ToolExecutionCompleted) -> None:
            tool_calls.add(1, {n.GEN_AI_TOOL_NAME: event.tool, n.TOOL_OUTCOME: event.outcome})

        def decided(event: HITLDecisionMade) -> None:
            attributes = {n.GEN_AI_TOOL_NAME: event.tool, n.HITL_DECISION: event.decision}
            decisions.add(1, attributes)
            wait.record(event.wait_s, attributes)

        def failed(event: AgentErrorOccurred) -> None:
            errors.add(1, {n.GEN_AI_AGENT_NAME: event.agent, n.ERROR_TYPE: event.error_type})

        def cut(event: ContextTrimmed) -> None:
            trimmed.add(event.dropped_messages, {n.GEN_AI_AGENT_NAME: event.agent})

        def rated(event: FeedbackGiven) -> None:
            # By evaluation, label and agent: a label is a short token (the API refuses
            # anything else), never the free-text comment.
            attributes = {n.GEN_AI_EVALUATION_NAME: event.evaluation}
            if event.label is not None:
                attributes[n.GEN_AI_EVALUATION_SCORE_LABEL] = event.label
            if event.agent is not None:
                attributes[n.GEN_AI_AGENT_NAME] = event.agent
            scores.record(event.score, attributes)

        self._instruments: dict[type[TelemetryEvent], Callable[[Any], None]] = {
            AgentSwitched: switched,
            ToolExecutionRequested: requested,
            ToolApprovalRequired: needs_approval,
            ToolExecutionCompleted: completed,
            HITLDecisionMade: decided,
            AgentErrorOccurred: failed,
            ContextTrimmed: cut,
            FeedbackGiven: rated,
        }

    def record(self, event: TelemetryEvent) -> None:
        """Count ``event`` and record the points it stands for (most events have none)."""
        self.counts.record(event)
        instrument = self._instruments.get(type(event))
        if instrument is not None:
            instrument(event)

    def close(self) -> None:
        """Nothing to release: the SDK instruments belong to the meter provider, whose
        cumulative totals outlive the application (kept so callers need not know)."""
