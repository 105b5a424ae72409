"""Exact counts of one application's catalogue events: what ``get_metrics()`` (the seed's
JSON) reads.

The OTel instruments (:mod:`telemetry.metrics`) are cumulative per meter provider, and a
process may run several applications on one provider (a restart in a test, benchmark
variants side by side); the seed's query API answers for one application, so it keeps its
own counts, one dictionary lookup and one lock per event. Keys are the metrics'
low-cardinality attribute values; nothing here knows about OpenTelemetry.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from telemetry import names as n
from telemetry.events import (
    AgentErrorOccurred,
    AgentProcessingCompleted,
    AgentSwitched,
    ContextTrimmed,
    FeedbackGiven,
    HITLDecisionMade,
    SessionCreated,
    SessionDeleted,
    TelemetryEvent,
    ToolApprovalRequired,
    ToolExecutionCompleted,
    ToolExecutionRequested,
)

UNKNOWN_AGENT = "unknown"
"""The agent key of feedback on an answer whose agent was not recorded."""


class AgentRuns:
    """Runs of one agent: how many, how many succeeded, their total duration."""

    __slots__ = ("count", "success", "total_s")

    def __init__(self) -> None:
        self.count = 0
        self.success = 0
        self.total_s = 0.0


class EventCounts:
    """Counts by metric key, updated by :meth:`record` under one lock; readers take
    :attr:`lock` and read the public tallies (or call :meth:`merge_into`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.switches: Counter[tuple[str, str, str]] = Counter()  # from, to, trigger
        self.tool_calls: Counter[tuple[str, str]] = Counter()  # tool, stage or outcome
        self.decisions: Counter[tuple[str, str]] = Counter()  # tool, decision
        self.timeouts = 0
        self.wait_total_s = 0.0
        self.errors: Counter[tuple[str, str]] = Counter()  # agent, error.type
        self.agent_runs: dict[str, AgentRuns] = {}
        self.sessions = 0  # created minus deleted
        self.trims: Counter[str] = Counter()  # agent -> model calls whose input was cut
        self.trimmed_messages: Counter[tuple[str]] = Counter()  # (agent,) -> messages left out
        self.trimmed_tokens: Counter[str] = Counter()  # agent -> estimated tokens left out
        self.ratings: Counter[str] = Counter()  # agent -> feedback given on its answers
        self.score_total: dict[str, float] = {}  # agent -> the sum of those scores
        self._updates: dict[type[TelemetryEvent], Callable[[Any], None]] = {
            AgentSwitched: self._switched,
            AgentProcessingCompleted: self._agent_done,
            ToolExecutionRequested: self._tool_requested,
            ToolApprovalRequired: self._tool_needs_approval,
            ToolExecutionCompleted: self._tool_done,
            HITLDecisionMade: self._decided,
            AgentErrorOccurred: self._error,
            SessionCreated: self._session_created,
            SessionDeleted: self._session_deleted,
            ContextTrimmed: self._trimmed,
            FeedbackGiven: self._rated,
        }

    @property
    def counted_types(self) -> frozenset[type[TelemetryEvent]]:
        """The event classes that change a count (others are ignored)."""
        return frozenset(self._updates)

    def record(self, event: TelemetryEvent) -> None:
        """Count ``event``; one lookup by its exact class, the lock only if it counts."""
        update = self._updates.get(type(event))
        if update is not None:
            with self.lock:
                update(event)

    def merge_into(self, total: EventCounts) -> None:
        """Add these counts to ``total`` (the caller holds neither lock)."""
        with self.lock:
            switches, tool_calls = Counter(self.switches), Counter(self.tool_calls)
            decisions, errors = Counter(self.decisions), Counter(self.errors)
            timeouts, wait_total_s, sessions = self.timeouts, self.wait_total_s, self.sessions
            trims, trimmed = Counter(self.trims), Counter(self.trimmed_messages)
            trimmed_tokens = Counter(self.trimmed_tokens)
            ratings, score_total = Counter(self.ratings), dict(self.score_total)
            runs = {agent: (r.count, r.success, r.total_s) for agent, r in self.agent_runs.items()}
        with total.lock:
            total.switches.update(switches)
            total.tool_calls.update(tool_calls)
            total.decisions.update(decisions)
            total.errors.update(errors)
            total.timeouts += timeouts
            total.wait_total_s += wait_total_s
            total.sessions += sessions
            total.trims.update(trims)
            total.trimmed_messages.update(trimmed)
            total.trimmed_tokens.update(trimmed_tokens)
            total.ratings.update(ratings)
            for agent, score in score_total.items():
                total.score_total[agent] = total.score_total.get(agent, 0.0) + score
            for agent, (count, success, total_s) in runs.items():
                into = total.agent_runs.setdefault(agent, AgentRuns())
                into.count += count
                into.success += success
                into.total_s += total_s

    def _switched(self, event: AgentSwitched) -> None:
        self.switches[(event.from_agent, event.to_agent, event.trigger)] += 1

    def _agent_done(self, event: AgentProcessingCompleted) -> None:
        runs = self.agent_runs.get(event.agent)
        if runs is None:
            runs = self.agent_runs[event.agent] = AgentRuns()
        runs.count += 1
        runs.success += 1 if event.success else 0
        runs.total_s += event.duration_s

    def _tool_requested(self, event: ToolExecutionRequested) -> None:
        self.tool_calls[(event.tool, n.TOOL_REQUESTED)] += 1

    def _tool_needs_approval(self, event: ToolApprovalRequired) -> None:
        self.tool_calls[(event.tool, n.TOOL_REQUIRES_APPROVAL)] += 1

    def _tool_done(self, event: ToolExecutionCompleted) -> None:
        self.tool_calls[(event.tool, event.outcome)] += 1

    def _decided(self, event: HITLDecisionMade) -> None:
        self.decisions[(event.tool, event.decision)] += 1
        if event.outcome == n.OUTCOME_TIMEOUT:
            self.timeouts += 1
        self.wait_total_s += event.wait_s

    def _error(self, event: AgentErrorOccurred) -> None:
        self.errors[(event.agent, event.error_type)] += 1

    def _session_created(self, event: SessionCreated) -> None:
        self.sessions += 1

    def _session_deleted(self, event: SessionDeleted) -> None:
        self.sessions -= 1

    def _trimmed(self, event: ContextTrimmed) -> None:
        self.trims[event.agent] += 1
        self.trimmed_messages[(event.agent,)] += event.dropped_messages
        self.trimmed_tokens[event.agent] += event.dropped_tokens

    def _rated(self, event: FeedbackGiven) -> None:
        agent = event.agent or UNKNOWN_AGENT
        self.ratings[agent] += 1
        self.score_total[agent] = self.score_total.get(agent, 0.0) + event.score
