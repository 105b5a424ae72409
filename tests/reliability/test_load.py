"""Item 1, load: N concurrent SSE conversations against a real uvicorn server, half of them
waiting for an approval that a second client decides. Nothing fails, every trace is
complete, and the metrics and the audit log match exactly what was sent."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx

from agent_runtime.app import create_app
from telemetry import names as n
from tests.reliability.support import (
    Outcome,
    by_trace,
    converse,
    poll,
    scale,
    server_span,
    trace_problems,
)
from tests.support.otel import Telemetered
from tests.support.server import serve

CONVERSATIONS = scale(100, 200)
APPROVAL_MESSAGE = "Create a sorting function"
QUESTION = "What is a closure?"


def _plan(index: int) -> tuple[str, str, str | None]:
    """(session id, message, decision): even indices need an approval, alternately
    APPROVE and REJECT; odd ones are plain questions."""
    session_id = f"load-{index:04d}"
    if index % 2:
        return session_id, QUESTION, None
    return session_id, APPROVAL_MESSAGE, "APPROVE" if index % 4 == 0 else "REJECT"


async def _approver(
    url: str, decisions: dict[str, str], timeout_s: float
) -> dict[str, httpx.Response]:
    """The second client: polls the pending approvals and decides each one once."""
    answered: dict[str, httpx.Response] = {}
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while len(answered) < len(decisions):
            assert time.monotonic() < deadline, f"only {len(answered)} approvals decided"
            pending = (await http.get("/v1/approvals")).json()
            fresh = [p for p in pending if p["call_id"] not in answered]
            responses = await asyncio.gather(
                *(
                    http.post(
                        f"/v1/approvals/{p['call_id']}",
                        json={"decision": decisions[p["session_id"]]},
                    )
                    for p in fresh
                )
            )
            for approval, response in zip(fresh, responses, strict=True):
                answered[approval["call_id"]] = response
            if not fresh:
                await asyncio.sleep(0.02)  # poll interval, bounded by the deadline above
    return answered


async def test_concurrent_conversations_lose_nothing(
    telemetered: Telemetered, make_settings, database_url: str | None
):
    """On both backends (``database_url``: SQLite, then PostgreSQL)."""
    plan = [_plan(i) for i in range(CONVERSATIONS)]
    decisions = {sid: d for sid, _, d in plan if d is not None}
    started = time.monotonic()
    with serve(create_app(make_settings(database_url=database_url))) as running:
        limits = httpx.Limits(max_connections=CONVERSATIONS + 8)
        async with httpx.AsyncClient(base_url=running.url, timeout=60, limits=limits) as users:
            outcomes_and_decisions = await asyncio.wait_for(
                asyncio.gather(
                    asyncio.gather(*(converse(users, sid, msg) for sid, msg, _ in plan)),
                    _approver(running.url, decisions, timeout_s=120),
                ),
                timeout=180,
            )
            outcomes: list[Outcome] = outcomes_and_decisions[0]
            answered: dict[str, httpx.Response] = outcomes_and_decisions[1]
            elapsed = time.monotonic() - started
            metrics = (await users.get("/v1/metrics")).json()
            audit = (await users.get("/v1/audit", params={"limit": 10_000})).json()
            pending_after = (await users.get("/v1/approvals")).json()
            store = type(running.app.state.runtime.store).__name__
    assert store == ("PostgresStore" if database_url else "SQLiteStore")

    # 0 failed requests
    failed = [(o.session_id, o.status, o.error, [e.event for e in o.events]) for o in outcomes]
    failed = [f for f, o in zip(failed, outcomes, strict=True) if not o.ok]
    assert failed == [], failed
    assert all(r.status_code == 200 for r in answered.values())
    assert {r.json()["resumed"] for r in answered.values()} == {"stream"}
    assert pending_after == []
    half = len(decisions)
    approved = sum(1 for d in decisions.values() if d == "APPROVE")
    rejected = half - approved
    for outcome, (_, _, decision) in zip(outcomes, plan, strict=True):
        done = outcome.of("done")[-1]
        if decision is None:
            assert outcome.of("approval_required") == [] and done["outcome"] == "completed"
        else:
            (result,) = outcome.of("tool_result")
            assert result["decision"] == decision
            assert result["outcome"] == ("completed" if decision == "APPROVE" else "rejected")
            assert done["outcome"] == ("completed" if decision == "APPROVE" else "rejected")

    # every trace complete: each span ended once, no orphan parents, one root
    trace_ids = {o.correlation_id for o in outcomes}
    assert None not in trace_ids and len(trace_ids) == CONVERSATIONS

    def all_server_spans_ended() -> dict[str, list[Any]] | None:
        grouped = by_trace(telemetered.spans())
        done = all(server_span(grouped.get(t, [])) is not None for t in trace_ids)
        return grouped if done else None

    grouped = poll(all_server_spans_ended, timeout_s=30, what="every request's server span")
    problems = {t: trace_problems(grouped[t]) for t in trace_ids}
    assert {t: p for t, p in problems.items() if p} == {}
    expected_names = {
        APPROVAL_MESSAGE: {
            "agent.request",
            "invoke_agent orchestrator",
            "invoke_agent coder",
            "execute_tool write_file",
        },
        QUESTION: {"agent.request", "invoke_agent orchestrator", "invoke_agent ask"},
    }
    for outcome, (_, message, _) in zip(outcomes, plan, strict=True):
        names = {s.name for s in grouped[outcome.correlation_id]}
        assert expected_names[message] <= names, (message, names)
        request = next(s for s in grouped[outcome.correlation_id] if s.name == n.SPAN_AGENT_REQUEST)
        assert request.attributes[n.REQUEST_OUTCOME] in ("completed", "rejected")
    # each decision request's span is linked to the execute_tool span that waited for it
    tool_spans = {
        s.context.span_id: s for s in telemetered.spans() if s.name == "execute_tool write_file"
    }
    decision_spans = [s for s in telemetered.spans() if s.name == n.SPAN_HITL_DECISION]
    assert len(decision_spans) == half
    assert all(
        len(s.links) == 1 and s.links[0].context.span_id in tool_spans for s in decision_spans
    )
    for trace_id in {f"{s.context.trace_id:032x}" for s in decision_spans}:
        assert trace_problems(grouped[trace_id]) == []

    # get_metrics() counts exactly what was sent
    assert metrics["agent_switches"] == {
        "orchestrator_to_coder": half,
        "orchestrator_to_ask": CONVERSATIONS - half,
    }
    assert metrics["tool_executions"] == {
        "write_file": {
            "requested": half,
            "completed": approved,
            "failed": 0,
            "rejected": rejected,
            "requires_approval": half,
        }
    }
    assert metrics["hitl_decisions"] == {
        "write_file": {"APPROVE": approved, "EDIT": 0, "REJECT": rejected}
    }
    assert metrics["hitl_summary"]["timeouts"] == 0
    assert metrics["errors"] == {}
    assert metrics["agent_processing"]["orchestrator"]["count"] == CONVERSATIONS
    assert metrics["agent_processing"]["coder"]["count"] == half
    assert metrics["agent_processing"]["ask"]["count"] == CONVERSATIONS - half
    # ... and so do the exported OTel instruments
    assert telemetered.metric(n.METRIC_AGENT_SWITCHES) == CONVERSATIONS
    assert telemetered.metric(n.METRIC_HITL_DECISIONS, {n.HITL_DECISION: "APPROVE"}) == approved
    assert telemetered.metric(n.METRIC_HITL_DECISIONS, {n.HITL_DECISION: "REJECT"}) == rejected
    assert telemetered.metric(n.METRIC_TOOL_CALLS, {n.TOOL_OUTCOME: "requested"}) == half

    # the audit log holds exactly one record per audited event, no duplicates
    assert len({r["record_id"] for r in audit}) == len(audit)
    assert Counter(r["event_type"] for r in audit) == {
        "agent_switched": CONVERSATIONS,
        "tool_approval_required": half,
        "hitl_approval_requested": half,
        "hitl_decision_made": half,
    }
    by_session = {o.session_id: o for o in outcomes}
    for record in audit:
        outcome = by_session[record["session_id"]]
        assert record["trace_id"] == outcome.correlation_id  # a decision: the waiting trace
        if record["event_type"] == "hitl_decision_made":
            assert record["decision"] == decisions[record["session_id"]]
    print(
        f"\nload ({'postgresql' if database_url else 'sqlite'}): "
        f"{CONVERSATIONS} conversations + {half} decisions in {elapsed:.2f} s, "
        f"0 failed, {sum(len(v) for v in grouped.values())} spans in "
        f"{len(grouped)} traces checked, {len(audit)} audit records checked"
    )
