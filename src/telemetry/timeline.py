"""The seed's timeline view of one request: T+ms, event, details.

Kept in memory for the most recent traces only (bounded both in traces and in entries per
trace), because it is a debugging aid; the durable record is the audit trail and the
traces in the tracing backend.
"""

from __future__ import annotations

import string
import threading
from collections import OrderedDict
from dataclasses import dataclass

from telemetry.events import TelemetryEvent
from telemetry.subscribers import EventContext

_HEX = frozenset(string.hexdigits)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the timeline; ``offset_ms`` counts from the trace's first event."""

    offset_ms: float
    event: str
    details: str


class TimelineRecorder:
    """Keeps per-trace event lists for the timeline view; the emit call feeds it directly
    (:meth:`record`), and it still works as a subscriber (:meth:`on_event`).

    Recording is on the request path, reading is not, so recording does the least it can.
    Traces are keyed by the trace id as the span context holds it (an int: no hex to
    format). Each entry keeps the event's one-line summary rather than the event: an entry is
    a fraction of an event's size, and keeping up to ``max_traces`` x ``max_entries`` events
    alive would push each new event's allocations into cold memory, which costs more than
    formatting the summary (``bench/per_event.py``).
    """

    def __init__(self, *, max_traces: int = 1000, max_entries: int = 500) -> None:
        self._traces: OrderedDict[int, list[tuple[float, str, str]]] = OrderedDict()
        self._max_traces = max_traces
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def on_event(self, event: TelemetryEvent, context: EventContext) -> None:
        """As a subscriber (the emit call feeds :meth:`record` directly)."""
        self.record(context.span_context.trace_id, context.timestamp, event.name, event.summary())

    def record(self, trace_id: int, timestamp: float, name: str, summary: str) -> None:
        """Add one line to the trace's timeline (the trace id as the span context holds it)."""
        with self._lock:
            entries = self._traces.get(trace_id)
            if entries is None:
                entries = self._traces[trace_id] = []
                if len(self._traces) > self._max_traces:
                    self._traces.popitem(last=False)
            if len(entries) < self._max_entries:
                entries.append((timestamp, name, summary))

    def timeline(self, trace_id: str) -> list[TimelineEntry] | None:
        """The trace's entries in time order, or None when the trace is unknown (or its id
        is not 32 hex digits)."""
        if len(trace_id) != 32 or not _HEX.issuperset(trace_id):
            return None
        with self._lock:
            entries = list(self._traces.get(int(trace_id, 16), ()))
        if not entries:
            return None
        entries.sort(key=lambda entry: entry[0])
        start = entries[0][0]
        return [
            TimelineEntry(round((ts - start) * 1e3, 1), name, details)
            for ts, name, details in entries
        ]
