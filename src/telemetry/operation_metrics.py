"""The GenAI operation histograms: one point per finished agent run, tool call and model
call, recorded when the operation ends (never per streamed chunk).

``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage`` are the semantic
conventions' client metrics; ``gen_ai.invoke_agent.duration`` and
``gen_ai.execute_tool.duration`` follow opentelemetry-util-genai's names for the agent and
tool operations. Bucket boundaries are the conventions' advice. Attributes are
low-cardinality (operation, agent, tool, provider, model, server, ``error.type``): never a
session, call or trace id. Points are recorded through the SDK's instruments when the
operation ends, whatever the sampler decided, with the operation's own span as their
context: the SDK's default exemplar filter (``trace_based``) then attaches that span to the
point's exemplar, so a slow bucket on a dashboard leads to its trace.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.context import Context
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.util.types import AttributeValue

from telemetry import names as n

_DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
_TOKEN_BUCKETS: Final = tuple(4**power for power in range(14))  # 1 … 67,108,864


def _duration(meter: Meter, name: str, description: str) -> Histogram:
    return meter.create_histogram(
        name,
        unit="s",
        description=description,
        explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
    )


class OperationMetrics:
    """Records the duration (and, for model calls, token) histograms of finished operations.

    ``context``: the finished operation's span in a context, for the points' exemplars
    (``None``: the current context, as the SDK does)."""

    def __init__(self, meter: Meter) -> None:
        self._agent = _duration(meter, n.METRIC_INVOKE_AGENT_DURATION, "Duration of agent runs")
        self._tool = _duration(meter, n.METRIC_EXECUTE_TOOL_DURATION, "Duration of tool calls")
        self._client = _duration(
            meter, n.METRIC_CLIENT_OPERATION_DURATION, "Duration of model calls"
        )
        self._tokens = meter.create_histogram(
            n.METRIC_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Tokens used per model call, by token type",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )

    def agent_finished(
        self, agent: str, duration_s: float, error: str | None, *, context: Context | None = None
    ) -> None:
        attributes: dict[str, AttributeValue] = {
            n.GEN_AI_OPERATION_NAME: n.OPERATION_INVOKE_AGENT,
            n.GEN_AI_AGENT_NAME: agent,
        }
        if error is not None:
            attributes[n.ERROR_TYPE] = error
        self._agent.record(duration_s, attributes, context)

    def tool_finished(
        self,
        tool: str,
        agent: str,
        duration_s: float,
        error: str | None,
        *,
        context: Context | None = None,
    ) -> None:
        attributes: dict[str, AttributeValue] = {
            n.GEN_AI_OPERATION_NAME: n.OPERATION_EXECUTE_TOOL,
            n.GEN_AI_TOOL_NAME: tool,
            n.GEN_AI_TOOL_TYPE: n.TOOL_TYPE_FUNCTION,
            n.GEN_AI_AGENT_NAME: agent,
        }
        if error is not None:
            attributes[n.ERROR_TYPE] = error
        self._tool.record(duration_s, attributes, context)

    def chat_finished(
        self,
        attributes: dict[str, AttributeValue],
        duration_s: float,
        *,
        input_tokens: int | None,
        output_tokens: int | None,
        context: Context | None = None,
    ) -> None:
        """``attributes``: the call's metric attributes (provider, models, server, error)."""
        self._client.record(duration_s, attributes, context)
        if input_tokens is not None:
            self._tokens.record(
                input_tokens, {**attributes, n.GEN_AI_TOKEN_TYPE: n.TOKEN_TYPE_INPUT}, context
            )
        if output_tokens is not None:
            self._tokens.record(
                output_tokens, {**attributes, n.GEN_AI_TOKEN_TYPE: n.TOKEN_TYPE_OUTPUT}, context
            )
