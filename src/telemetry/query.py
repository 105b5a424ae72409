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
        """The seed's summary, in the seed's shapes (its users index into them)::

            agent_switches    {"<from>_to_<to>": n}
            agent_processing  {agent: {count, total_duration_ms, success_count, failure_count}}
            tool_executions   {tool: {requested, completed, failed, rejected, requires_approval}}
            hitl_decisions    {tool: {APPROVE, EDIT, REJECT}}   (a timeout is a REJECT)
            errors            {agent: {error_type: n}}

        What this project adds is under further top-level keys, never inside those five:
        ``agent_switch_triggers`` {trigger: n}, ``agent_avg_duration_ms`` {agent: ms},
        ``hitl_summary`` {total, timeouts, avg_wait_ms}, ``context_trims`` {agent: {calls,
        messages, tokens}} (model calls whose input the context budget cut), ``feedback``
        {agent: {count, mean_score}} (people's ratings of the agent's answers, scores in
        [0, 1]).
        """
        counts = self._counts
        with counts.lock:
            switches: Counter[str] = Counter()
            triggers: Counter[str] = Counter()
            for (src, dst, trigger), count in counts.switches.items():
                switches[f"{src}_to_{dst}"] += count
                triggers[trigger] += count
            tools: dict[str, dict[str, int]] = {}
            for (tool, stage), count in counts.tool_calls.items():
                tools.setdefault(tool, dict.fromkeys(_TOOL_COUNTS, 0))[stage] = count
            decisions: dict[str, dict[str, int]] = {}
            for (tool, decision), count in counts.decisions.items():
                decisions.setdefault(tool, dict.fromkeys(_DECISIONS, 0))[decision] = count
            errors: dict[str, dict[str, int]] = {}
            for (agent, error_type), count in counts.errors.items():
                errors.setdefault(agent, {})[error_type] = count
            decided = sum(counts.decisions.values())
            return {
                "agent_switches": dict(switches),
                "agent_processing": {
                    agent: {
                        "count": runs.count,
                        "total_duration_ms": round(runs.total_s * 1e3, 3),
                        "success_count": runs.success,
                        "failure_count": runs.count - runs.success,
                    }
                    for agent, runs in counts.agent_runs.items()
                },
                "tool_executions": tools,
                "hitl_decisions": decisions,
                "errors": errors,
                "agent_switch_triggers": dict(triggers),
                "agent_avg_duration_ms": {
                    agent: round(runs.total_s / runs.count * 1e3, 3)
                    for agent, runs in counts.agent_runs.items()
                    if runs.count
                },
                "hitl_summary": {
                    "total": decided,
                    "timeouts": counts.timeouts,
                    "avg_wait_ms": (
                        round(counts.wait_total_s / decided * 1e3, 3) if decided else 0.0
                    ),
                },
                "context_trims": {
                    agent: {
                        "calls": calls,
                        "messages": counts.trimmed_messages[(agent,)],
                        "tokens": counts.trimmed_tokens[agent],
                    }
                    for agent, calls in counts.trims.items()
                },
                "feedback": {
                    agent: {
                        "count": rated,
                        "mean_score": round(counts.score_total.get(agent, 0.0) / rated, 4),
                    }
                    for agent, rated in counts.ratings.items()
                    if rated
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
    """The seed's audit query API over the application's audit trail."""

    def __init__(self, store: AuditLog) -> None:
        self._store = store

    def get_audit_log(
        self, session_id: str | None = None, event_type: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` audit records, oldest first, in the seed's shape (ISO 8601
        ``timestamp``, ``event_type``, ``event_id``, ``session_id``, ``correlation_id`` and
        the event's own fields, then ours). ``event_type`` takes the seed's names
        (``hitl_decision_made``) or the OTel event names (``hitl.decision_made``).

        Synchronous, as the seed's users call it: it blocks its thread for one read of the
        store. Code on the event loop awaits :meth:`aget_audit_log` instead."""
        records = self._store.query_blocking(
            session_id=session_id, event_type=event_type, limit=limit
        )
        return [record.to_dict() for record in records]

    async def aget_audit_log(
        self, session_id: str | None = None, event_type: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """:meth:`get_audit_log`, awaited: what the service's HTTP API serves."""
        records = await self._store.query(session_id=session_id, event_type=event_type, limit=limit)
        return [record.to_dict() for record in records]
