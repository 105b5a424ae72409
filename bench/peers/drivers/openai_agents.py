# The peers' packages are in bench/peers' environment only: `make bench-peers-lint` checks
# this file there; the service's mypy sees the imports as missing.
# mypy: disable-error-code="import-not-found"
"""The OpenAI Agents SDK: an ``Agent`` on ``OpenAIChatCompletionsModel`` over an
``AsyncOpenAI(base_url=…)``, the tool a ``function_tool`` of a plain function, the run
streamed to the caller (``Runner.run_streamed`` and its ``stream_events()``).

One option picks the tracing, each in a process of its own (the SDK's trace processors are
global):

- ``oi``: OpenInference's ``OpenAIAgentsInstrumentor`` on the SDK's tracer provider
  (:func:`bench.peers.driver.recording`), inputs and outputs hidden; it replaces the SDK's
  own processors (its default, ``exclusive_processor``), so nothing goes to OpenAI;
- ``native``: the SDK's own tracing, its ``BatchTraceProcessor`` with an exporter that
  discards and counts in place of the one that uploads to OpenAI.

Variants: ``on`` (a ``RunConfig`` with tracing, sensitive data off) and ``off``
(``RunConfig(tracing_disabled=True)``, what the SDK offers to turn tracing off).
"""

from __future__ import annotations

import threading
from typing import Any, cast

from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    RunConfig,
    Runner,
    function_tool,
    set_trace_processors,
)
from agents.tracing import Span, Trace, flush_traces
from agents.tracing.processor_interface import TracingExporter
from agents.tracing.processors import BatchTraceProcessor
from openai import AsyncOpenAI
from openinference.instrumentation import TraceConfig
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

from bench.peers.driver import (
    INSTRUCTIONS,
    MESSAGE,
    Recording,
    Workload,
    main,
    read_file_tool,
    recording,
    versions,
)


class CountingTraceExporter(TracingExporter):  # type: ignore[misc, unused-ignore]
    """The native tracing's exporter: counts what it is given and drops it."""

    def __init__(self) -> None:
        self.traces = 0
        self.spans = 0
        self.names: dict[str, int] = {}
        self._lock = threading.Lock()

    def export(self, items: list[Trace | Span[Any]]) -> None:
        with self._lock:
            for item in items:
                if isinstance(item, Trace):
                    self.traces += 1
                else:
                    self.spans += 1
                    kind = item.span_data.type
                    self.names[kind] = self.names.get(kind, 0) + 1


class AgentsSubject:
    variants = ("on", "off")

    def __init__(self, workload: Workload) -> None:
        (self.tracing,) = workload.options
        self.client = AsyncOpenAI(base_url=workload.base_url, api_key="x")
        self.agent: Agent[None] = Agent(
            name="reader",
            instructions=INSTRUCTIONS,
            model=OpenAIChatCompletionsModel(model=workload.model, openai_client=self.client),
            # The SDK asks for usage in the stream only from OpenAI's own endpoint.
            model_settings=ModelSettings(include_usage=True),
            tools=[function_tool(read_file_tool(workload))],
        )
        self.recording: Recording | None = None
        self.exporter: CountingTraceExporter | None = None
        self.processor: BatchTraceProcessor | None = None
        if self.tracing == "oi":
            self.recording = recording()
            OpenAIAgentsInstrumentor().instrument(
                tracer_provider=self.recording.tracer_provider,
                config=TraceConfig(hide_inputs=True, hide_outputs=True),
            )
        elif self.tracing == "native":
            self.exporter = CountingTraceExporter()
            self.processor = BatchTraceProcessor(self.exporter)
            set_trace_processors([self.processor])
        else:
            raise ValueError(f"tracing: oi or native, not {self.tracing!r}")
        self.configs = {
            "on": RunConfig(trace_include_sensitive_data=False),
            "off": RunConfig(tracing_disabled=True),
        }

    def prepare(self, variant: str, index: int) -> None:
        pass

    async def run(self, variant: str, index: int) -> None:
        result = Runner.run_streamed(self.agent, MESSAGE, run_config=self.configs[variant])
        async for _ in result.stream_events():
            pass
        output = cast(str, result.final_output)
        if "512" not in output:
            raise RuntimeError(f"unexpected answer {output!r}")

    async def counts(self) -> dict[str, Any]:
        if self.recording is not None:
            return self.recording.counts()
        assert self.processor is not None and self.exporter is not None
        flush_traces()
        return {
            "spans": self.exporter.spans,
            "names": dict(self.exporter.names),
            "traces": self.exporter.traces,
            "histogram_points": 0,
            "logs": 0,
        }

    async def aclose(self) -> None:
        if self.recording is not None:
            OpenAIAgentsInstrumentor().uninstrument()
            self.recording.shutdown()
        if self.processor is not None:
            self.processor.shutdown()
        await self.client.close()


async def build(workload: Workload) -> AgentsSubject:
    return AgentsSubject(workload)


def ready() -> dict[str, Any]:
    return {"versions": versions("openai-agents", "openinference-instrumentation-openai-agents")}


if __name__ == "__main__":
    main(build, ready)
