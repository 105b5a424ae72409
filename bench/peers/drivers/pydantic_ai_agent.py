# The peers' packages are in bench/peers' environment only: `make bench-peers-lint` checks
# this file there; the service's mypy sees the imports as missing.
# mypy: disable-error-code="import-not-found"
"""pydantic-ai: an ``Agent`` on ``OpenAIChatModel`` with an ``OpenAIProvider(base_url=…)``,
the tool a plain function, the run streamed to the caller (``run_stream_events``).

Variants: ``on``, an agent with the ``Instrumentation`` capability, its
``InstrumentationSettings`` on the SDK's tracer and meter providers
(:func:`bench.peers.driver.recording`), content and binary content off; ``off``, the same
agent without it (nothing else instruments it: no ``Agent.instrument_all()``). Both share
the model.
"""

from __future__ import annotations

from typing import Any

from pydantic_ai import Agent, AgentRunResultEvent
from pydantic_ai.capabilities import Instrumentation
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from bench.peers.driver import (
    INSTRUCTIONS,
    MESSAGE,
    Workload,
    main,
    read_file_tool,
    recording,
    versions,
)


class PydanticAISubject:
    variants = ("on", "off")

    def __init__(self, workload: Workload) -> None:
        self.recording = recording()
        model = OpenAIChatModel(
            workload.model, provider=OpenAIProvider(base_url=workload.base_url, api_key="x")
        )
        instrumentation = InstrumentationSettings(
            tracer_provider=self.recording.tracer_provider,
            meter_provider=self.recording.meter_provider,
            include_content=False,
            include_binary_content=False,
        )
        tool = read_file_tool(workload)
        self.agents: dict[str, Agent[None, str]] = {
            variant: Agent(
                model,
                name="reader",
                instructions=INSTRUCTIONS,
                tools=[tool],
                capabilities=[Instrumentation(settings=instrumentation)] if variant == "on" else [],
            )
            for variant in self.variants
        }

    def prepare(self, variant: str, index: int) -> None:
        pass

    async def run(self, variant: str, index: int) -> None:
        output = None
        async with self.agents[variant].run_stream_events(MESSAGE) as events:
            async for event in events:
                if isinstance(event, AgentRunResultEvent):
                    output = event.result.output
        if output is None or "512" not in output:
            raise RuntimeError(f"unexpected answer {output!r}")

    async def counts(self) -> dict[str, Any]:
        return self.recording.counts()

    async def aclose(self) -> None:
        self.recording.shutdown()


async def build(workload: Workload) -> PydanticAISubject:
    return PydanticAISubject(workload)


def ready() -> dict[str, Any]:
    return {"versions": versions("pydantic-ai-slim")}


if __name__ == "__main__":
    main(build, ready)
