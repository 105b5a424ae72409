"""The project's metric instruments, defined once, and the one recorder that feeds them.

Metrics are recorded from every event whatever the sampler decided: counts derived from
sampled spans would be wrong. Attributes are low-cardinality by construction (agent, tool,
decision, outcome, trigger: never session or trace ids). The ``gen_ai.*`` duration and token
histograms are recorded when an operation ends, by :mod:`telemetry.operation_metrics`.

Counts are kept exactly, per application (:class:`telemetry.counts.EventCounts`, which
``get_metrics()`` reads too), and exported through *observable* instruments read at
collection time: the SDK's synchronous ``Counter.add`` costs ~6 µs a call (measured with
opentelemetry-sdk 1.45 on this project's machine), an increment here well under 1 µs, and
the exported values are the same, exact whatever the sampler decided. The exported totals
are per process, like the meter provider: two applications in one process add up.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from typing import Any, Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Counter, Meter, Observation

from telemetry import names as n
from telemetry._histogram_batch import HistogramBatch, PointRecorder, batched
from telemetry.counts import EventCounts
from telemetry.events import HITLDecisionMade, TelemetryEvent

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


class _Sources:
    """Every application's :class:`EventCounts`, for the process-wide exported counters.

    An exported counter is cumulative for the process, like the meter provider: it sums
    the live applications' counts and those of applications that closed (folded into
    ``retired`` when they close, so a counter never goes down).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: list[EventCounts] = []
        self.retired = EventCounts()

    def add(self, counts: EventCounts) -> None:
        with self.lock:
            self.live.append(counts)

    def retire(self, counts: EventCounts) -> None:
        with self.lock:
            if not any(known is counts for known in self.live):
                return
            self.live = [known for known in self.live if known is not counts]
            counts.merge_into(self.retired)

    def all(self) -> list[EventCounts]:
        with self.lock:
            return [*self.live, self.retired]


_sources = _Sources()
_registered: list[Meter] = []  # held, so an id is never reused for another meter
_register_lock = threading.Lock()


def _observer(
    tally: Callable[[EventCounts], Tally[Any]], keys: tuple[str, ...]
) -> metrics.CallbackT:
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        total: Tally[tuple[str, ...]] = Tally()
        for counts in _sources.all():
            with counts.lock:
                total.update(tally(counts))
        return [
            Observation(count, dict(zip(keys, values, strict=True)))
            for values, count in total.items()
        ]

    return callback


def _register_observables(meter: Meter) -> None:
    """Create the observable instruments once per meter (a second app reuses them)."""
    with _register_lock:
        if any(known is meter for known in _registered):
            return
        _registered.append(meter)

    counters: tuple[
        tuple[str, Callable[[EventCounts], Tally[Any]], tuple[str, ...], str, str], ...
    ] = (
        (n.METRIC_AGENT_SWITCHES, lambda c: c.switches, _SWITCH_KEYS, "{switch}", "Agent switches"),
        (
            n.METRIC_TOOL_CALLS,
            lambda c: c.tool_calls,
            _TOOL_KEYS,
            "{call}",
            "Tool calls by outcome",
        ),
        (n.METRIC_HITL_DECISIONS, lambda c: c.decisions, _DECISION_KEYS, "{decision}", "Decisions"),
        (
            n.METRIC_ERRORS,
            lambda c: c.errors,
            _ERROR_KEYS,
            "{error}",
            "Real failures by error.type",
        ),
        (
            n.METRIC_CONTEXT_TRIMMED,
            lambda c: c.trimmed_messages,
            (n.GEN_AI_AGENT_NAME,),
            "{message}",
            "Transcript messages left out of model calls by the context budget",
        ),
    )
    for name, tally, keys, unit, description in counters:
        meter.create_observable_counter(
            name, callbacks=[_observer(tally, keys)], unit=unit, description=description
        )

    def sessions(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(sum(counts.sessions for counts in _sources.all()))]

    meter.create_observable_up_down_counter(
        n.METRIC_SESSIONS_ACTIVE,
        callbacks=[sessions],
        unit="{session}",
        description="Sessions created and not deleted (by this process)",
    )


class MetricsRecorder:
    """Feeds one application's metrics from its events: the exact counts (exported through
    observable counters, read by ``get_metrics()``) and the human-wait histogram.

    One ``record`` call per event; :meth:`close` when the application stops, so its
    counts stay in the process totals without being held live.
    """

    def __init__(
        self,
        meter: Meter,
        counts: EventCounts | None = None,
        batch: HistogramBatch | None = None,
    ) -> None:
        """``batch``: queue the wait histogram's points there (see
        :mod:`telemetry._histogram_batch`)."""
        _register_observables(meter)
        self.counts = counts if counts is not None else EventCounts()
        _sources.add(self.counts)
        wait = meter.create_histogram(
            n.METRIC_HITL_WAIT,
            unit="s",
            description="Time a tool call waited for its human decision",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )
        self._wait: PointRecorder = batched(wait, batch)

    def record(self, event: TelemetryEvent) -> None:
        """Count ``event`` and record the points it stands for (most events have none)."""
        self.counts.record(event)
        if type(event) is HITLDecisionMade:
            self._wait.record(
                event.wait_s, {n.GEN_AI_TOOL_NAME: event.tool, n.HITL_DECISION: event.decision}
            )

    def close(self) -> None:
        _sources.retire(self.counts)
