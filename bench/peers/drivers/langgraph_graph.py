# The peers' packages are in bench/peers' environment only: `make bench-peers-lint` checks
# this file there; the service's mypy sees the imports as missing.
# mypy: disable-error-code="import-not-found"
"""LangGraph: a two-node graph (a model node calling ``ChatOpenAI(base_url=…)`` with the
tool bound, a ``ToolNode`` running it, ``tools_condition`` between them), the model
streaming and the run streamed to the caller (``astream(stream_mode="messages")``).

Variants: ``on``, OpenInference's ``LangChainInstrumentor`` instrumenting on the SDK's
tracer provider (:func:`bench.peers.driver.recording`), inputs and outputs hidden; ``off``,
not instrumented. The instrumentation has no per-run switch (it wraps
``BaseCallbackManager.__init__`` for the whole process), so it is turned on and off with its
own ``instrument()`` / ``uninstrument()`` between runs, outside the timed window, whenever
the next run's variant differs from the last one's.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from openinference.instrumentation import TraceConfig
from openinference.instrumentation.langchain import LangChainInstrumentor
from pydantic import SecretStr

from bench.peers.driver import (
    INSTRUCTIONS,
    MESSAGE,
    Workload,
    main,
    read_file_tool,
    recording,
    versions,
)


class LangGraphSubject:
    variants = ("on", "off")

    def __init__(self, workload: Workload) -> None:
        self.recording = recording()
        self.instrumentor = LangChainInstrumentor()
        tool = read_file_tool(workload)
        model = ChatOpenAI(
            model=workload.model,
            base_url=workload.base_url,
            api_key=SecretStr("x"),
            streaming=True,
            # ChatOpenAI asks for usage in the stream only from OpenAI's own endpoint.
            stream_usage=True,
        ).bind_tools([tool])

        async def call_model(state: MessagesState) -> dict[str, Any]:
            return {"messages": [await model.ainvoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("agent", call_model)
        graph.add_node("tools", ToolNode([tool]))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition)
        graph.add_edge("tools", "agent")
        self.graph = graph.compile()

    def prepare(self, variant: str, index: int) -> None:
        if variant == "on" and not self.instrumentor.is_instrumented_by_opentelemetry:
            self.instrumentor.instrument(
                tracer_provider=self.recording.tracer_provider,
                config=TraceConfig(hide_inputs=True, hide_outputs=True),
            )
        elif variant == "off" and self.instrumentor.is_instrumented_by_opentelemetry:
            self.instrumentor.uninstrument()

    async def run(self, variant: str, index: int) -> None:
        answer: list[str] = []
        state: MessagesState = {"messages": [SystemMessage(INSTRUCTIONS), HumanMessage(MESSAGE)]}
        async for message, _ in self.graph.astream(state, stream_mode="messages"):
            if isinstance(message, AIMessageChunk) and isinstance(message.content, str):
                answer.append(message.content)
        if "512" not in "".join(answer):
            raise RuntimeError(f"unexpected answer {answer!r}")

    async def counts(self) -> dict[str, Any]:
        return self.recording.counts()

    async def aclose(self) -> None:
        if self.instrumentor.is_instrumented_by_opentelemetry:
            self.instrumentor.uninstrument()
        self.recording.shutdown()


async def build(workload: Workload) -> LangGraphSubject:
    return LangGraphSubject(workload)


def ready() -> dict[str, Any]:
    return {
        "versions": versions(
            "langgraph",
            "langchain-core",
            "langchain-openai",
            "openinference-instrumentation-langchain",
        )
    }


if __name__ == "__main__":
    main(build, ready)
