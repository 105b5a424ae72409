"""The seed's query APIs, kept on top of the OTel-native layer.

``MetricsCollector`` reads one application's exact counts for ``get_metrics()`` (the OTel
instruments are fed from the same events, at the same moment); ``AuditLogger`` reads the
durable audit store.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, get_args

from telemetry import names as n
from telemetry.audit import AuditLog
from telemetry.counts import EventCounts
from telemetry.events import TelemetryEvent
from telemetry.subscribers import EventContext

_TOOL_COUNTS = (
    n.TOOL_REQUESTED,
    n.OUTCOME_COMPLETED,
    n.OUTCOME_FAILED,
    n.OUTCOME_REJECTED,
    n.TOOL_REQUIRES_APPROVAL,
)
"""The seed's ``tool_executions`` keys, in its order."""
_DECISIONS: tuple[str, ...] = get_args(n.Decision)


class MetricsCollector:
    """The seed's metrics API over one application's exact counts.

    In the service the hub's metrics recorder feeds the counts (from the events that feed the
    OTel instruments), so the collector is not a subscriber there; standing alone it is one,
    counting what it is sent (``on_event``).
    """

    def __init__(self, counts: EventCounts | None = None) -> None:
        self._counts = counts if counts is not None else EventCounts()
        self.event_types = self._counts.counted_types

    def on_event(self, event: TelemetryEvent, context: EventContext) -> None:
        self._counts.record(event)

    def get_metrics(self) -> dict[str, Any]:
        """The seed's summary: switches, agent processing, tools, decisions, errors."""
        counts = self._counts
        with counts.lock:
            decisions: Counter[str] = Counter()
            for (_, decision), count in counts.decisions.items():
                decisions[decision] += count
            decided = sum(decisions[d] for d in _DECISIONS)
            by_route: Counter[str] = Counter()
            by_trigger: Counter[str] = Counter()
            for (src, dst, trigger), count in counts.switches.items():
                by_route[f"{src}->{dst}"] += count
                by_trigger[trigger] += count
            errors_by_type: Counter[str] = Counter()
            errors_by_agent: Counter[str] = Counter()
            for (agent, error_type), count in counts.errors.items():
                errors_by_type[error_type] += count
                errors_by_agent[agent] += count
            tools: dict[str, dict[str, int]] = {}
            for (tool, stage), count in counts.tool_calls.items():
                tools.setdefault(tool, dict.fromkeys(_TOOL_COUNTS, 0))[stage] = count
            return {
                "agent_switches": {
                    "total": sum(counts.switches.values()),
                    "by_route": dict(by_route),
                    "by_trigger": dict(by_trigger),
                },
                "agent_processing": {
                    agent: {
                        "count": runs.count,
                        "success": runs.success,
                        "failed": runs.count - runs.success,
                        "avg_duration_ms": (
                            round(runs.total_s / runs.count * 1e3, 3) if runs.count else 0.0
                        ),
                    }
                    for agent, runs in counts.agent_runs.items()
                },
                "tool_executions": tools,
                "hitl_decisions": {
                    "total": decided,
                    **{decision: decisions[decision] for decision in _DECISIONS},
                    "timeout": counts.timeouts,
                    "avg_wait_ms": (
                        round(counts.wait_total_s / decided * 1e3, 3) if decided else 0.0
                    ),
                },
                "errors": {
                    "total": sum(counts.errors.values()),
                    "by_type": dict(errors_by_type),
                    "by_agent": dict(errors_by_agent),
                },
            }

    def get_agent_avg_duration(self, agent: str) -> float:
        """Mean processing time of ``agent`` in milliseconds (0.0 before its first run)."""
        with self._counts.lock:
            runs = self._counts.agent_runs.get(agent)
            return runs.total_s / runs.count * 1e3 if runs and runs.count else 0.0

    def get_tool_success_rate(self, tool: str) -> float:
        """Completed / (completed + failed); a human REJECT is neither (0.0 before any)."""
        with self._counts.lock:
            completed = self._counts.tool_calls[(tool, n.OUTCOME_COMPLETED)]
            finished = completed + self._counts.tool_calls[(tool, n.OUTCOME_FAILED)]
            return completed / finished if finished else 0.0

    def get_agent_switch_count(
        self, from_agent: str | None = None, to_agent: str | None = None
    ) -> int:
        """Switches, optionally only those leaving ``from_agent`` and/or reaching ``to_agent``."""
        with self._counts.lock:
            return sum(
                count
                for (src, dst, _), count in self._counts.switches.items()
                if from_agent in (None, src) and to_agent in (None, dst)
            )


class AuditLogger:
    """The seed's audit query API over the durable audit store."""

    def __init__(self, store: AuditLog) -> None:
        self._store = store

    def get_audit_log(
        self, session_id: str | None = None, event_type: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Audit records, oldest first, each with the trace id of its request."""
        records = self._store.query(session_id=session_id, event_type=event_type, limit=limit)
        return [record.to_dict() for record in records]
