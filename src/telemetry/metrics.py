"""The project's metric instruments, defined once, and the one recorder that feeds them.

Metrics are recorded from every event whatever the sampler decided: counts derived from
sampled spans would be wrong. Attributes are low-cardinality by construction (agent, tool,
decision, outcome, trigger: never session or trace ids). The ``gen_ai.*`` duration and token
histograms are recorded when an operation ends, by :mod:`telemetry.operation_metrics`.

Counts are kept in process-wide aggregates and exported through *observable* instruments
read at collection time: the SDK's synchronous ``Counter.add`` costs ~6 µs a call (measured
with opentelemetry-sdk 1.45 on this project's machine), an increment here well under 1 µs,
and the exported values are the same, exact whatever the sampler decided. The aggregates
are per process, like the meter provider: two applications in one process add up.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from typing import Any, Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation

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

# Human waits: seconds to many minutes (the default approval timeout is 300 s).
_WAIT_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_SWITCH_KEYS: Final = (n.SWITCH_FROM, n.SWITCH_TO, n.SWITCH_TRIGGER)
_TOOL_KEYS: Final = (n.GEN_AI_TOOL_NAME, n.TOOL_OUTCOME)
_DECISION_KEYS: Final = (n.GEN_AI_TOOL_NAME, n.HITL_DECISION)
_ERROR_KEYS: Final = (n.GEN_AI_AGENT_NAME, n.ERROR_TYPE)


def dropped_counter(meter: Meter) -> Counter:
    """Telemetry the SDK could not deliver (queue full, export failed), by signal."""
    return meter.create_counter(
        n.METRIC_TELEMETRY_DROPPED,
        unit="{item}",
        description="Spans, log records or metric batches dropped before export",
    )


class _ProcessCounts:
    """Exact counts since the process started, keyed by their metric attribute values."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.switches: Tally[tuple[str, ...]] = Tally()
        self.tool_calls: Tally[tuple[str, ...]] = Tally()
        self.decisions: Tally[tuple[str, ...]] = Tally()
        self.errors: Tally[tuple[str, ...]] = Tally()
        self.sessions = 0

    def observe(self, tally: Tally[tuple[str, ...]], keys: tuple[str, ...]) -> list[Observation]:
        with self.lock:
            items = list(tally.items())
        return [Observation(count, dict(zip(keys, values, strict=True))) for values, count in items]


_counts = _ProcessCounts()
_registered: list[Meter] = []  # held, so an id is never reused for another meter
_register_lock = threading.Lock()


def _observer(tally: Tally[tuple[str, ...]], keys: tuple[str, ...]) -> metrics.CallbackT:
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        return _counts.observe(tally, keys)

    return callback


def _register_observables(meter: Meter) -> None:
    """Create the observable instruments once per meter (a second app reuses them)."""
    with _register_lock:
        if any(known is meter for known in _registered):
            return
        _registered.append(meter)

    counters = (
        (n.METRIC_AGENT_SWITCHES, _counts.switches, _SWITCH_KEYS, "{switch}", "Agent switches"),
        (n.METRIC_TOOL_CALLS, _counts.tool_calls, _TOOL_KEYS, "{call}", "Tool calls by outcome"),
        (n.METRIC_HITL_DECISIONS, _counts.decisions, _DECISION_KEYS, "{decision}", "Decisions"),
        (n.METRIC_ERRORS, _counts.errors, _ERROR_KEYS, "{error}", "Real failures by error.type"),
    )
    for name, tally, keys, unit, description in counters:
        meter.create_observable_counter(
            name, callbacks=[_observer(tally, keys)], unit=unit, description=description
        )

    def sessions(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(_counts.sessions)]

    meter.create_observable_up_down_counter(
        n.METRIC_SESSIONS_ACTIVE,
        callbacks=[sessions],
        unit="{session}",
        description="Sessions created and not deleted (by this process)",
    )


class MetricsRecorder:
    """Turns catalogue events into metric points; one ``record`` call per event.

    ``record`` finds the event's handler by its exact class in a dictionary: one lookup
    for every event, where a chain of ``isinstance`` checks costs more the further down an
    event sits (and most events, having no metric, would walk all of it).
    """

    def __init__(self, meter: Meter) -> None:
        _register_observables(meter)
        self._wait: Histogram = meter.create_histogram(
            n.METRIC_HITL_WAIT,
            unit="s",
            description="Time a tool call waited for its human decision",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )
        self._handlers: dict[type[TelemetryEvent], Callable[[Any], None]] = {
            ToolExecutionRequested: self._tool_requested,
            ToolApprovalRequired: self._tool_needs_approval,
            ToolExecutionCompleted: self._tool_completed,
            AgentSwitched: self._switched,
            HITLDecisionMade: self._decided,
            AgentErrorOccurred: self._error,
            SessionCreated: self._session_created,
            SessionDeleted: self._session_deleted,
        }

    def record(self, event: TelemetryEvent) -> None:
        """Record the metric points ``event`` stands for (most events have none)."""
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _tool_requested(self, event: ToolExecutionRequested) -> None:
        with _counts.lock:
            _counts.tool_calls[(event.tool, "requested")] += 1

    def _tool_needs_approval(self, event: ToolApprovalRequired) -> None:
        with _counts.lock:
            _counts.tool_calls[(event.tool, "requires_approval")] += 1

    def _tool_completed(self, event: ToolExecutionCompleted) -> None:
        with _counts.lock:
            _counts.tool_calls[(event.tool, event.outcome)] += 1

    def _switched(self, event: AgentSwitched) -> None:
        with _counts.lock:
            _counts.switches[(event.from_agent, event.to_agent, event.trigger)] += 1

    def _decided(self, event: HITLDecisionMade) -> None:
        with _counts.lock:
            _counts.decisions[(event.tool, event.decision)] += 1
        self._wait.record(
            event.wait_s, {n.GEN_AI_TOOL_NAME: event.tool, n.HITL_DECISION: event.decision}
        )

    def _error(self, event: AgentErrorOccurred) -> None:
        with _counts.lock:
            _counts.errors[(event.agent, event.error_type)] += 1

    def _session_created(self, event: SessionCreated) -> None:
        with _counts.lock:
            _counts.sessions += 1

    def _session_deleted(self, event: SessionDeleted) -> None:
        with _counts.lock:
            _counts.sessions -= 1
