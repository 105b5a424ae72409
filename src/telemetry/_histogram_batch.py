"""Histogram points handed to the SDK in batches, not one at a time on the request path.

Why: the SDK's ``Histogram.record`` cleans and hashes each point's attributes and walks
every reader's storage: ~7 µs a point in a tight loop, but ~20 µs on a request path, where
its code has gone cold since the last point. An agent run records 13 points (durations,
token counts, the human wait): ~0.3 ms of CPU, a third of the layer's recording cost
(``bench/per_run.py``). Appending a point to a queue costs ~0.2 µs, and the SDK then takes
the queued points in one loop, where its code stays hot:

- whenever a metric reader collects (periodic, forced, or at shutdown): an observable
  instrument's callback, which the SDK runs before any reader reads its storages, hands
  the queue over first, so every collection sees every point recorded before it;
- inline, once :data:`MAX_PENDING` points wait: memory stays bounded whatever the export
  interval;
- when the application closes.

The values, attributes and aggregation are the SDK's, as if recorded one by one (its
views, temporality and bucket advice apply). A point's *exemplar* needs the span context
and the moment it was recorded, so when exemplars are on (``OTEL_METRICS_EXEMPLAR_FILTER``)
points go to the SDK at once (:func:`batch_for`); so they do on a provider that is not the
SDK's (its ``record`` costs nothing to defer).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import Final, Protocol

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation
from opentelemetry.util.types import Attributes

_log = logging.getLogger(__name__)

MAX_PENDING: Final = 256
"""Queued points at which ``record`` hands the queue to the SDK on the caller's thread (~20
agent runs' worth). That hand-over holds the event loop ~2 ms (~7 µs a point): large enough
for the SDK's code to stay hot, small enough not to show in a request's latency (4,096
points held it ~30 ms)."""
HOOK_INSTRUMENT: Final = "agent_runtime.telemetry.histogram_batch"
"""The observable instrument whose callback hands the queue over at collection; it
observes nothing, so no reader exports it."""


class PointRecorder(Protocol):
    """What the layer's histograms are to their callers: an SDK ``Histogram`` or its batched
    stand-in. ``attributes`` must not change after the call (a queued point holds them, as
    the SDK's own measurement does)."""

    def record(self, amount: int | float, attributes: Attributes = None) -> None: ...


class _BatchedHistogram:
    """A histogram whose points wait in its batch's queue."""

    __slots__ = ("_batch", "_histogram")

    def __init__(self, histogram: Histogram, batch: HistogramBatch) -> None:
        self._histogram = histogram
        self._batch = batch

    def record(self, amount: int | float, attributes: Attributes = None) -> None:
        batch = self._batch
        batch.pending.append((self._histogram, amount, attributes))
        if len(batch.pending) >= MAX_PENDING:
            batch.drain()


class HistogramBatch:
    """The queue of one application's histogram points, handed to the SDK at collection.

    Thread-safe without a lock: ``deque.append`` and ``popleft`` are atomic, so concurrent
    recorders and drains (a request thread over the bound, the reader's thread collecting)
    each take distinct points and none is lost or taken twice.
    """

    def __init__(self, meter: Meter) -> None:
        self.pending: deque[tuple[Histogram, int | float, Attributes]] = deque()
        self._meter = meter
        _hooks.register(self)

    @property
    def meter(self) -> Meter:
        return self._meter

    def wrap(self, histogram: Histogram) -> PointRecorder:
        """``histogram``, its points queued in this batch."""
        return _BatchedHistogram(histogram, self)

    def drain(self) -> None:
        """Record every queued point into the SDK, oldest first."""
        pending = self.pending
        while True:
            try:
                histogram, amount, attributes = pending.popleft()
            except IndexError:
                return
            try:
                histogram.record(amount, attributes)
            except Exception:  # one bad point must not strand the others
                _log.exception("histogram point could not be recorded")

    def close(self) -> None:
        """Hand over what is queued; collections stop draining this batch."""
        _hooks.unregister(self)
        self.drain()


def batch_for(meter: Meter, *, sdk: bool, exemplars: bool) -> HistogramBatch | None:
    """A batch for ``meter``'s histograms, or None where points should go at once: a
    provider that is not the SDK's (``sdk`` False), or exemplars wanted."""
    if not sdk or exemplars:
        return None
    return HistogramBatch(meter)


def batched(histogram: Histogram, batch: HistogramBatch | None) -> PointRecorder:
    """``histogram`` itself without a batch, else its batched stand-in."""
    return histogram if batch is None else batch.wrap(histogram)


class _Hooks:
    """The live batches, by meter, and one collection hook per meter.

    One hook per meter because the SDK keeps the first observable instrument of a name
    and ignores a second one's callbacks: two applications in one process (a restart in a
    test) share their meter, and its hook drains both their batches.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: list[HistogramBatch] = []
        self._hooked: list[Meter] = []  # held, so an id is never reused for another meter

    def register(self, batch: HistogramBatch) -> None:
        meter = batch.meter
        with self._lock:
            self._live.append(batch)
            if any(known is meter for known in self._hooked):
                return
            self._hooked.append(meter)
        meter.create_observable_gauge(
            HOOK_INSTRUMENT,
            callbacks=[lambda options: self._drain(meter, options)],
            description="Hands queued histogram points to the SDK; observes nothing",
        )

    def unregister(self, batch: HistogramBatch) -> None:
        with self._lock:
            self._live = [known for known in self._live if known is not batch]

    def _drain(self, meter: Meter, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            batches = [batch for batch in self._live if batch.meter is meter]
        for batch in batches:
            batch.drain()
        return ()


_hooks = _Hooks()
