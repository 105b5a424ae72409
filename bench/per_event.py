"""Benchmark 2: one non-audit domain event (ToolExecutionRequested), four ways, interleaved.

- ``event``: the project's call as domain code makes it, ``hub.emit(ToolExecutionRequested(
  …), span=run.span)`` on an agent run's span from the project's factory: pydantic event,
  span event, metric, the hub's subscribers (recording SDK providers, content capture off);
  ``emit_only`` is the same with the event built once.
- ``naive``: ``span.add_event`` with 5 attributes + ``Counter.add`` + ``Histogram.record``
  on the raw SDK.
- ``floor``: the naive calls on the API's no-op providers.
- ``bus``: the seed's style, a pydantic event + ``asyncio.gather`` of 2 async subscribers.

Each sample times a batch of events on one fresh recording span (under the SDK's 128 events
per span limit); the variants take turns, batch after batch, in one process.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from pydantic import BaseModel

import telemetry
from bench.proc import Worker, serve_commands
from bench.providers import Recording, recording_providers
from bench.stats import Summary, row, summarize

BATCH = 100
ARGS = {"path": "sort.py", "content": "def sort_items(items):\n    return sorted(items)\n"}


class SeedToolEvent(BaseModel):
    """The seed's bus event shape."""

    tool: str
    call_id: str
    agent: str
    session_id: str
    arguments: dict[str, Any]


class SeedBus:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.log: list[SeedToolEvent] = []

        async def metrics_sub(event: SeedToolEvent) -> None:
            self.counts[event.tool] = self.counts.get(event.tool, 0) + 1

        async def audit_sub(event: SeedToolEvent) -> None:
            if len(self.log) > 1000:
                self.log.clear()
            self.log.append(event)

        self.subscribers = (metrics_sub, audit_sub)

    async def publish(self, event: SeedToolEvent) -> None:
        await asyncio.gather(*(sub(event) for sub in self.subscribers))


class EventBench:
    def __init__(self) -> None:
        self.recording: Recording = recording_providers()
        telemetry.configure(
            tracer_provider=self.recording.tracer_provider,
            meter_provider=self.recording.meter_provider,
            logger_provider=self.recording.logger_provider,
        )
        self.hub = telemetry.Telemetry()
        self.tracer = self.recording.tracer_provider.get_tracer("bench")
        meter = self.recording.meter_provider.get_meter("bench")
        self.counter = meter.create_counter("bench.tool.calls")
        self.histogram = meter.create_histogram("bench.tool.duration")
        self.noop_tracer = trace.NoOpTracerProvider().get_tracer("bench")
        noop_meter = metrics.NoOpMeterProvider().get_meter("bench")
        self.noop_counter = noop_meter.create_counter("bench.tool.calls")
        self.noop_histogram = noop_meter.create_histogram("bench.tool.duration")
        self.bus = SeedBus()
        self.loop = asyncio.new_event_loop()
        self.prebuilt = telemetry.ToolExecutionRequested(
            tool="write_file", call_id="call_1", agent="coder", arguments=ARGS, session_id="s1"
        )
        self.variants: dict[str, Callable[[], float]] = {
            "event": self.project,
            "emit_only": self.project_prebuilt,
            "naive": self.naive,
            "floor": self.floor,
            "bus": self.seed_bus,
        }

    def _agent_span(self) -> tuple[telemetry.AgentRun, trace.Span]:
        """The span domain code emits on: an agent run's, from the project's factory."""
        run = self.hub.spans.agent("coder", conversation_id="s1", parent=Context())
        return run, run.span

    def project(self) -> float:
        (run, span), emit = self._agent_span(), self.hub.emit
        event_type = telemetry.ToolExecutionRequested
        start = time.perf_counter_ns()
        for i in range(BATCH):
            emit(
                event_type(
                    tool="write_file",
                    call_id=f"call_{i}",
                    agent="coder",
                    arguments=ARGS,
                    session_id="s1",
                ),
                span=span,
            )
        elapsed = time.perf_counter_ns() - start
        run.stop()
        return elapsed / BATCH / 1e3

    def project_prebuilt(self) -> float:
        (run, span), emit, event = self._agent_span(), self.hub.emit, self.prebuilt
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            emit(event, span=span)
        elapsed = time.perf_counter_ns() - start
        run.stop()
        return elapsed / BATCH / 1e3

    def _composite(self, tracer: trace.Tracer, counter: Any, histogram: Any) -> float:
        span = tracer.start_span("invoke_agent coder")
        start = time.perf_counter_ns()
        for i in range(BATCH):
            span.add_event(
                "tool.execution_requested",
                {
                    "gen_ai.tool.name": "write_file",
                    "gen_ai.tool.call.id": f"call_{i}",
                    "gen_ai.agent.name": "coder",
                    "session.id": "s1",
                    "agent_runtime.tool.arguments_length": 48,
                },
            )
            counter.add(1, {"gen_ai.tool.name": "write_file", "outcome": "requested"})
            histogram.record(0.001, {"gen_ai.tool.name": "write_file"})
        elapsed = time.perf_counter_ns() - start
        span.end()
        return elapsed / BATCH / 1e3

    def naive(self) -> float:
        return self._composite(self.tracer, self.counter, self.histogram)

    def floor(self) -> float:
        return self._composite(self.noop_tracer, self.noop_counter, self.noop_histogram)

    def seed_bus(self) -> float:
        async def batch() -> float:
            publish = self.bus.publish
            start = time.perf_counter_ns()
            for i in range(BATCH):
                await publish(
                    SeedToolEvent(
                        tool="write_file",
                        call_id=f"call_{i}",
                        agent="coder",
                        session_id="s1",
                        arguments=ARGS,
                    )
                )
            return (time.perf_counter_ns() - start) / BATCH / 1e3

        return self.loop.run_until_complete(batch())

    def handle(self, command: str) -> dict[str, Any]:
        rounds = int(command)
        samples: dict[str, list[float]] = {name: [] for name in self.variants}
        names = list(self.variants)
        for name in names:  # warm-up
            self.variants[name]()
        gc.collect()
        for i in range(rounds):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                samples[name].append(self.variants[name]())
        return samples


def measure(*, quick: bool) -> dict[str, Summary]:
    worker = Worker("bench.per_event")
    try:
        samples = worker.ask("20" if quick else "600")
    finally:
        worker.close()
    result = {name: summarize(values) for name, values in samples.items()}
    labels = {
        "event": "project emit (build event + emit)",
        "emit_only": "project emit (event prebuilt)",
        "naive": "naive composite (raw SDK)",
        "floor": "no-op floor (API providers)",
        "bus": "seed-style asyncio bus",
    }
    print(f"2. per non-audit event (ToolExecutionRequested), us per event, batches of {BATCH}")
    for name, label in labels.items():
        print(row(label, result[name]))
    ratio = result["event"].median / result["naive"].median
    print(f"  project / naive = {ratio:.2f}x (goal <= 0.5x)")
    return result


def main() -> None:
    bench = EventBench()
    serve_commands(bench.handle, {"ready": True})


if __name__ == "__main__":
    main()
