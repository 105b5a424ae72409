"""The project's metric instruments, defined once, and the one recorder that feeds them.

Metrics are recorded from every event whatever the sampler decided: counts derived from
sampled spans would be wrong. Attributes here are low-cardinality by construction (agent,
tool, decision, outcome, trigger: never session or trace ids). The ``gen_ai.*`` duration and
token histograms are recorded by ``opentelemetry-util-genai`` and the OpenAI instrumentation.
"""

from __future__ import annotations

from opentelemetry import metrics
from opentelemetry.metrics import Counter, Meter

from telemetry import names as n
from telemetry.events import (
    AgentErrorOccurred,
    AgentSwitched,
    HITLDecisionMade,
    SessionCreated,
    SessionDeleted,
    TelemetryEvent,
    ToolApprovalRequired,
    ToolExecutionCompleted,
    ToolExecutionRequested,
)

_SCOPE = "agent_runtime.telemetry"
# Human waits: seconds to many minutes (the default approval timeout is 300 s).
_WAIT_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


def get_meter() -> Meter:
    """The layer's meter, from whatever provider is global when it is first asked for."""
    return metrics.get_meter(_SCOPE)


def dropped_counter(meter: Meter) -> Counter:
    """Telemetry the SDK could not deliver (queue full, export failed), by signal."""
    return meter.create_counter(
        n.METRIC_TELEMETRY_DROPPED,
        unit="{item}",
        description="Spans, log records or metric batches dropped before export",
    )


class MetricsRecorder:
    """Turns catalogue events into metric points; one ``record`` call per event."""

    def __init__(self, meter: Meter) -> None:
        self._switches = meter.create_counter(
            n.METRIC_AGENT_SWITCHES, unit="{switch}", description="Agent switches by route"
        )
        self._tool_calls = meter.create_counter(
            n.METRIC_TOOL_CALLS, unit="{call}", description="Tool calls by tool and outcome"
        )
        self._decisions = meter.create_counter(
            n.METRIC_HITL_DECISIONS, unit="{decision}", description="Human decisions"
        )
        self._wait = meter.create_histogram(
            n.METRIC_HITL_WAIT,
            unit="s",
            description="Time a tool call waited for its human decision",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )
        self._errors = meter.create_counter(
            n.METRIC_ERRORS, unit="{error}", description="Real failures by agent and error.type"
        )
        self._sessions = meter.create_up_down_counter(
            n.METRIC_SESSIONS_ACTIVE, unit="{session}", description="Sessions not deleted"
        )

    def record(self, event: TelemetryEvent) -> None:
        """Record the metric points ``event`` stands for (most events have none)."""
        match event:
            case AgentSwitched():
                self._switches.add(
                    1,
                    {
                        n.SWITCH_FROM: event.from_agent,
                        n.SWITCH_TO: event.to_agent,
                        n.SWITCH_TRIGGER: event.trigger,
                    },
                )
            case ToolExecutionRequested():
                self._tool_call(event.tool, "requested")
            case ToolApprovalRequired():
                self._tool_call(event.tool, "requires_approval")
            case ToolExecutionCompleted():
                self._tool_call(event.tool, event.outcome)
            case HITLDecisionMade():
                attrs = {n.GEN_AI_TOOL_NAME: event.tool, n.HITL_DECISION: event.decision}
                self._decisions.add(1, attrs)
                self._wait.record(event.wait_s, attrs)
            case AgentErrorOccurred():
                self._errors.add(
                    1, {n.GEN_AI_AGENT_NAME: event.agent, n.ERROR_TYPE: event.error_type}
                )
            case SessionCreated():
                self._sessions.add(1)
            case SessionDeleted():
                self._sessions.add(-1)
            case _:
                pass

    def _tool_call(self, tool: str, outcome: str) -> None:
        self._tool_calls.add(1, {n.GEN_AI_TOOL_NAME: tool, n.TOOL_OUTCOME: outcome})
