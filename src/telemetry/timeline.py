"""The seed's timeline view of one request: T+ms, event, details.

Kept in memory for the most recent traces only (bounded both in traces and in entries per
trace), because it is a debugging aid; the durable record is the audit trail and the
traces in the tracing backend.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from telemetry.events import TelemetryEvent
from telemetry.subscribers import EventContext


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the timeline; ``offset_ms`` counts from the trace's first event."""

    offset_ms: float
    event: str
    details: str


class TimelineRecorder:
    """Subscriber that keeps per-trace event lists for the timeline view."""

    def __init__(self, *, max_traces: int = 1000, max_entries: int = 500) -> None:
        # Events are kept as they are and summarised when a timeline is read: formatting
        # every event's details on the request path would cost more than recording it.
        self._traces: OrderedDict[str, list[tuple[float, TelemetryEvent]]] = OrderedDict()
        self._max_traces = max_traces
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def on_event(self, event: TelemetryEvent, context: EventContext) -> None:
        with self._lock:
            entries = self._traces.get(context.trace_id)
            if entries is None:
                entries = self._traces[context.trace_id] = []
                if len(self._traces) > self._max_traces:
                    self._traces.popitem(last=False)
            if len(entries) < self._max_entries:
                entries.append((context.timestamp, event))

    def timeline(self, trace_id: str) -> list[TimelineEntry] | None:
        """The trace's entries in time order, or None when the trace is unknown."""
        with self._lock:
            entries = list(self._traces.get(trace_id.lower(), ()))
        if not entries:
            return None
        entries.sort(key=lambda entry: entry[0])
        start = entries[0][0]
        return [
            TimelineEntry(round((ts - start) * 1e3, 1), event.name, event.summary())
            for ts, event in entries
        ]
