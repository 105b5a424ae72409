"""The seed's query APIs, kept on top of the OTel-native layer.

``MetricsCollector`` is a subscriber that keeps exact in-process aggregates for
``get_metrics()`` (the OTel instruments are the exported form of the same counts);
``AuditLogger`` reads the durable audit store.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any, ClassVar

from telemetry.audit import AuditLog
from telemetry.events import (
    AgentErrorOccurred,
    AgentProcessingCompleted,
    AgentSwitched,
    HITLDecisionMade,
    TelemetryEvent,
    ToolApprovalRequired,
    ToolExecutionCompleted,
    ToolExecutionRequested,
)
from telemetry.subscribers import EventContext

_TOOL_COUNTS = ("requested", "completed", "failed", "rejected", "requires_approval")


class MetricsCollector:
    """Exact aggregates of the seed's metrics, fed by every emitted event it counts."""

    event_types: ClassVar[frozenset[type[TelemetryEvent]]] = frozenset(
        {
            AgentSwitched,
            AgentProcessingCompleted,
            ToolExecutionRequested,
            ToolApprovalRequired,
            ToolExecutionCompleted,
            HITLDecisionMade,
            AgentErrorOccurred,
        }
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._switches: Counter[tuple[str, str, str]] = Counter()
        self._agent_runs: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        self._tools: dict[str, Counter[str]] = defaultdict(Counter)
        self._decisions: Counter[str] = Counter()
        self._wait_total_s = 0.0
        self._errors: Counter[tuple[str, str]] = Counter()
        self._updates: dict[type[TelemetryEvent], Callable[[Any], None]] = {
            AgentSwitched: self._switched,
            AgentProcessingCompleted: self._agent_done,
            ToolExecutionRequested: self._tool_requested,
            ToolApprovalRequired: self._tool_needs_approval,
            ToolExecutionCompleted: self._tool_done,
            HITLDecisionMade: self._decided,
            AgentErrorOccurred: self._error,
        }

    def on_event(self, event: TelemetryEvent, context: EventContext) -> None:
        # One lookup by exact class, then the lock only for the events that count here.
        update = self._updates.get(type(event))
        if update is not None:
            with self._lock:
                update(event)

    def _switched(self, event: AgentSwitched) -> None:
        self._switches[(event.from_agent, event.to_agent, event.trigger)] += 1

    def _agent_done(self, event: AgentProcessingCompleted) -> None:
        runs = self._agent_runs[event.agent]
        runs[0] += 1
        runs[1] += 1 if event.success else 0
        runs[2] += event.duration_s

    def _tool_requested(self, event: ToolExecutionRequested) -> None:
        self._tools[event.tool]["requested"] += 1

    def _tool_needs_approval(self, event: ToolApprovalRequired) -> None:
        self._tools[event.tool]["requires_approval"] += 1

    def _tool_done(self, event: ToolExecutionCompleted) -> None:
        self._tools[event.tool][event.outcome] += 1

    def _decided(self, event: HITLDecisionMade) -> None:
        self._decisions[event.decision] += 1
        if event.outcome == "timeout":
            self._decisions["timeout"] += 1
        self._wait_total_s += event.wait_s

    def _error(self, event: AgentErrorOccurred) -> None:
        self._errors[(event.agent, event.error_type)] += 1

    def get_metrics(self) -> dict[str, Any]:
        """The seed's summary: switches, agent processing, tools, decisions, errors."""
        with self._lock:
            decided = sum(self._decisions[d] for d in ("APPROVE", "EDIT", "REJECT"))
            by_route: Counter[str] = Counter()
            by_trigger: Counter[str] = Counter()
            for (src, dst, trigger), count in self._switches.items():
                by_route[f"{src}->{dst}"] += count
                by_trigger[trigger] += count
            errors_by_type: Counter[str] = Counter()
            errors_by_agent: Counter[str] = Counter()
            for (agent, error_type), count in self._errors.items():
                errors_by_type[error_type] += count
                errors_by_agent[agent] += count
            return {
                "agent_switches": {
                    "total": sum(self._switches.values()),
                    "by_route": dict(by_route),
                    "by_trigger": dict(by_trigger),
                },
                "agent_processing": {
                    agent: {
                        "count": int(runs[0]),
                        "success": int(runs[1]),
                        "failed": int(runs[0] - runs[1]),
                        "avg_duration_ms": round(runs[2] / runs[0] * 1e3, 3) if runs[0] else 0.0,
                    }
                    for agent, runs in self._agent_runs.items()
                },
                "tool_executions": {
                    tool: {key: counts[key] for key in _TOOL_COUNTS}
                    for tool, counts in self._tools.items()
                },
                "hitl_decisions": {
                    "total": decided,
                    "APPROVE": self._decisions["APPROVE"],
                    "EDIT": self._decisions["EDIT"],
                    "REJECT": self._decisions["REJECT"],
                    "timeout": self._decisions["timeout"],
                    "avg_wait_ms": round(self._wait_total_s / decided * 1e3, 3) if decided else 0.0,
                },
                "errors": {
                    "total": sum(self._errors.values()),
                    "by_type": dict(errors_by_type),
                    "by_agent": dict(errors_by_agent),
                },
            }

    def get_agent_avg_duration(self, agent: str) -> float:
        """Mean processing time of ``agent`` in milliseconds (0.0 before its first run)."""
        with self._lock:
            runs = self._agent_runs.get(agent)
            return runs[2] / runs[0] * 1e3 if runs and runs[0] else 0.0

    def get_tool_success_rate(self, tool: str) -> float:
        """Completed / (completed + failed); a human REJECT is neither (0.0 before any)."""
        with self._lock:
            counts = self._tools.get(tool, Counter())
            finished = counts["completed"] + counts["failed"]
            return counts["completed"] / finished if finished else 0.0

    def get_agent_switch_count(
        self, from_agent: str | None = None, to_agent: str | None = None
    ) -> int:
        """Switches, optionally only those leaving ``from_agent`` and/or reaching ``to_agent``."""
        with self._lock:
            return sum(
                count
                for (src, dst, _), count in self._switches.items()
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
