"""What every framework's driver process shares: the command loop, the timing, the providers.

A driver (one module per framework under :mod:`bench.peers.drivers`) builds a
:class:`Subject`: one agent run of the workload, as that framework is meant to be used,
in each of its variants (telemetry ``on`` and ``off``, a few more for agent-runtime). This
module runs the variants in rounds, the order rotating each round, each run timed as the
CPU of the whole process (``time.process_time``: every thread, so batch processors' export
threads count when they run), and answers the harness (:mod:`bench.peers.__main__`) over
standard input and output, one JSON line per command:

- ``warmup N``: N rounds, not timed; then a full collection and ``gc.freeze()`` (as
  ``agent-runtime serve`` does after start-up), so what start-up and the first runs built
  stays out of every later collection, in every framework alike;
- ``N``: N rounds, every variant once per round; answers each variant's CPU per run (µs);
- ``counts``: flush the providers; answers the runs made and what was exported.

Telemetry ``on`` means the SDK's tracer, meter and logger providers with their batching
processors and readers, as in production, and exporters that discard what they get and
only count it (:func:`recording`); no content captured.

The harness starts a driver as ``python -m bench.peers.drivers.<name> BASE_URL FILES_DIR
[OPTION…]``: the workload server's ``/v1`` URL, the folder holding the file the tool reads,
and the driver's own options.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.peers.workload import FILE_NAME, MODEL
from bench.proc import serve_commands

MESSAGE = f"What do the notes in {FILE_NAME} say? Read the file, then answer."
"""The user's message, the same for every framework."""
INSTRUCTIONS = "You read files and answer questions about them."
"""The agent's system prompt, for the frameworks that take one from the driver."""


@dataclass(frozen=True, slots=True)
class Workload:
    """Where the model and the file are."""

    base_url: str
    files: Path
    options: tuple[str, ...] = ()
    """The driver's own arguments after the two above (e.g. which tracing)."""
    model: str = MODEL

    def read_file(self, path: str) -> str:
        """The tool's work: one small file of the workload's folder, as text."""
        target = (self.files / path).resolve()
        if target.parent != self.files.resolve():
            raise ValueError(f"{path!r} is not a file of the workload")
        return target.read_text(encoding="utf-8")


def read_file_tool(workload: Workload) -> Callable[[str], str]:
    """The workload's one tool as a plain function, for the frameworks that build a tool's
    name, description and schema from its signature and docstring."""

    def read_file(path: str) -> str:
        """Read a text file of the workspace and return its content.

        Args:
            path: The file's path, relative to the workspace.
        """
        return workload.read_file(path)

    return read_file


class Subject(Protocol):
    """One framework, ready to run the workload in each of its variants."""

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants this subject runs, in the order of its first round."""

    def prepare(self, variant: str, index: int) -> None:
        """What a run needs beforehand and is not part of it (called before the clock starts)."""

    async def run(self, variant: str, index: int) -> None:
        """One agent run (the user's message to the final answer); ``index`` counts the
        runs of ``variant`` from 1 (a new conversation each time)."""

    async def counts(self) -> dict[str, Any]:
        """Flush the providers; what the ``on`` variants exported (see :meth:`Recording.counts`)."""

    async def aclose(self) -> None:
        """Release connections and providers."""


class CountingSpanExporter(SpanExporter):
    def __init__(self) -> None:
        self.count = 0
        self.names: Counter[str] = Counter()
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self.count += len(spans)
            self.names.update(span.name for span in spans)
        return SpanExportResult.SUCCESS


class CountingLogExporter(LogRecordExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.count += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class CountingMetricExporter(MetricExporter):
    """Keeps the number of histogram points recorded so far (cumulative temporality)."""

    def __init__(self) -> None:
        super().__init__()
        self.histogram_points = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        points = 0
        for resource in metrics_data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        if isinstance(point, HistogramDataPoint):
                            points += point.count
        self.histogram_points = points
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


@dataclass(slots=True)
class Recording:
    """SDK providers whose exporters count and discard."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    spans: CountingSpanExporter
    metrics: CountingMetricExporter
    logs: CountingLogExporter

    def counts(self) -> dict[str, Any]:
        """Everything exported so far: spans (and by name), histogram points, log records."""
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()
        self.logger_provider.force_flush()
        return {
            "spans": self.spans.count,
            "names": dict(self.spans.names),
            "histogram_points": self.metrics.histogram_points,
            "logs": self.logs.count,
        }

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


def recording() -> Recording:
    """A TracerProvider with a BatchSpanProcessor, a MeterProvider with a periodic reader (no
    exemplars: the service's default, given to every framework alike) and a LoggerProvider
    with a BatchLogRecordProcessor, their exporters counting; default delays and sizes."""
    spans, metrics, logs = CountingSpanExporter(), CountingMetricExporter(), CountingLogExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    reader = PeriodicExportingMetricReader(metrics, export_interval_millis=60_000)
    meter_provider = MeterProvider(
        metric_readers=[reader], shutdown_on_exit=False, exemplar_filter=AlwaysOffExemplarFilter()
    )
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs))
    return Recording(tracer_provider, meter_provider, logger_provider, spans, metrics, logs)


def versions(*distributions: str) -> dict[str, str]:
    """Installed versions of ``distributions`` (and the SDK's and the client's)."""
    names = ("opentelemetry-sdk", "openai", *distributions)
    return {name: metadata.version(name) for name in names}


class Rounds:
    """Runs a subject's variants in rotating order and times each run."""

    def __init__(self, subject: Subject, loop: asyncio.AbstractEventLoop) -> None:
        self.subject = subject
        self.loop = loop
        self.runs: Counter[str] = Counter()

    async def _rounds(self, n: int) -> dict[str, list[float]]:
        variants = self.subject.variants
        samples: dict[str, list[float]] = {v: [] for v in variants}
        clock = time.process_time_ns
        for i in range(n):
            shift = i % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                self.runs[variant] += 1
                index = self.runs[variant]
                self.subject.prepare(variant, index)
                start = clock()
                await self.subject.run(variant, index)
                samples[variant].append((clock() - start) / 1e3)
        return samples

    def handle(self, command: str) -> dict[str, Any]:
        if command == "counts":
            return {"runs": dict(self.runs), **self.loop.run_until_complete(self.subject.counts())}
        if command.startswith("warmup "):
            self.loop.run_until_complete(self._rounds(int(command.split()[1])))
            gc.collect()
            gc.freeze()
            return {"warm": True}
        return {"samples": self.loop.run_until_complete(self._rounds(int(command)))}


def main(
    build: Callable[[Workload], Awaitable[Subject]], ready: Callable[[], dict[str, Any]]
) -> None:
    """A driver's ``__main__``: build the subject, then answer the harness until ``quit``.

    ``ready`` names what the harness prints about this framework (versions, variants)."""
    base_url, files, options = sys.argv[1], Path(sys.argv[2]), tuple(sys.argv[3:])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    subject = loop.run_until_complete(build(Workload(base_url, files, options)))
    rounds = Rounds(subject, loop)
    try:
        serve_commands(rounds.handle, {"variants": list(subject.variants), **ready()})
    finally:
        loop.run_until_complete(subject.aclose())
        loop.close()
