"""Benchmark 6: where the SDK's time goes on the layer's path, one call at a time.

Each of the SDK calls the layer makes for an agent run, timed on its own in a loop (its
code hot, so these are floors: inside an agent run, where other code runs between two
calls, each costs more), on real SDK providers whose exporters only count
(:mod:`bench.providers`, the layer's pipeline):

- ``span``: ``Tracer.start_span`` with the four attributes of an ``invoke_agent`` span, one
  ``set_attribute`` (the outcome) and ``end()`` (its processors included);
- ``span_event``: ``Span.add_event`` with the three attributes of ``agent.switched``;
- ``counter_add``: ``Counter.add`` with two attributes, no span current;
- ``histogram``: ``Histogram.record`` with two attributes, no span current;
- ``histogram_exemplar``: the same in a sampled span's context (the SDK's default
  ``trace_based`` filter offers it to an exemplar reservoir);
- ``log_record``: ``Logger.emit`` of an audit-shaped record (five attributes) into the
  batch log record processor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from bench.proc import Worker, serve_commands
from bench.providers import recording_providers
from bench.stats import Summary, row, summarize

BATCH = 100
AGENT = {
    "gen_ai.operation.name": "invoke_agent",
    "gen_ai.agent.name": "coder",
    "gen_ai.conversation.id": "session-0123",
    "session.id": "session-0123",
}
SWITCH = {
    "agent_runtime.switch.from": "orchestrator",
    "agent_runtime.switch.to": "coder",
    "agent_runtime.switch.trigger": "orchestrator",
}
TOOL = {"gen_ai.tool.name": "write_file", "agent_runtime.tool.outcome": "requested"}
AUDIT = {**SWITCH, "agent_runtime.audit.event_type": "agent.switched", "session.id": "s"}


class SdkCalls:
    def __init__(self) -> None:
        self.recording = recording_providers()
        self.tracer = self.recording.tracer_provider.get_tracer("bench")
        meter = self.recording.meter_provider.get_meter("bench")
        self.counter = meter.create_counter("bench.calls")
        self.histogram = meter.create_histogram("bench.duration")
        self.logger = self.recording.logger_provider.get_logger("bench")
        self.variants: dict[str, Callable[[], float]] = {
            "span": self.span,
            "span_event": self.span_event,
            "counter_add": self.counter_add,
            "histogram": self.histogram_record,
            "histogram_exemplar": self.histogram_exemplar,
            "log_record": self.log_record,
        }

    @staticmethod
    def _timed(calls: Callable[[], Any]) -> float:
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            calls()
        return (time.perf_counter_ns() - start) / BATCH / 1e3

    def span(self) -> float:
        def one() -> None:
            span = self.tracer.start_span("invoke_agent coder", attributes=AGENT)
            span.set_attribute("agent_runtime.agent.outcome", "completed")
            span.end()

        return self._timed(one)

    def span_event(self) -> float:
        span = self.tracer.start_span("invoke_agent coder")
        elapsed = self._timed(lambda: span.add_event("agent.switched", SWITCH))
        span.end()
        return elapsed

    def counter_add(self) -> float:
        return self._timed(lambda: self.counter.add(1, TOOL))

    def histogram_record(self) -> float:
        return self._timed(lambda: self.histogram.record(0.01, TOOL))

    def histogram_exemplar(self) -> float:
        span = self.tracer.start_span("invoke_agent coder")
        context = trace.set_span_in_context(span)
        elapsed = self._timed(lambda: self.histogram.record(0.01, TOOL, context))
        span.end()
        return elapsed

    def log_record(self) -> float:
        return self._timed(
            lambda: self.logger.emit(event_name="agent.switched", body="a", attributes=AUDIT)
        )

    def handle(self, command: str) -> dict[str, list[float]]:
        rounds = int(command)
        names = list(self.variants)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm-up
            self.variants[name]()
        for i in range(rounds):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                samples[name].append(self.variants[name]())
        return samples


def measure(*, quick: bool) -> dict[str, Summary]:
    worker = Worker("bench.sdk_calls")
    try:
        samples = worker.ask("5" if quick else "200")
    finally:
        worker.close()
    result = {name: summarize(values) for name, values in samples.items()}
    print(f"6. the SDK's calls on the layer's path, us per call, hot loop, batches of {BATCH}")
    for name, summary in result.items():
        print(row(name, summary))
    return result


def main() -> None:
    serve_commands(SdkCalls().handle, {"ready": True})


if __name__ == "__main__":
    main()
