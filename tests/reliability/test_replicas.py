"""Issue 17: many replicas, one conversation. Real ``agent-runtime serve`` processes on one
PostgreSQL database (tests/support/postgres.py): a decision posted to any replica reaches the
stream waiting on another, a run whose replica died resumes on the one that hears the
decision, exactly one replica resumes a run, and a lost notification only delays a decision
by the poll interval."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import httpx

from telemetry import names as n
from tests.reliability.support import Outcome, ServiceProcess, apoll, converse, poll
from tests.reliability.support_replicas import (
    DECIDER,
    HEADERS,
    USER,
    decisions_audited,
    lease_expired,
    links,
    listener_pids,
    replicas,
    spans,
    terminate,
    trace_problems,
    whole_trace,
)
from tests.support.openai_server import ChatServer, scripted_responder

ASK = "Create a sorting function"
SAME_DECISION_PER_REPLICA = 4
"""Each replica gets the same decision this many times at once (12 in all)."""


async def _waiting(http: httpx.AsyncClient, session_id: str) -> tuple[asyncio.Task[Outcome], str]:
    """A stream on ``http``'s replica, once it waits for its approval; and the call id."""
    stream = asyncio.create_task(converse(http, session_id, ASK, headers=HEADERS))

    async def pending() -> str | None:
        answer = await http.get("/v1/approvals", params={"session_id": session_id})
        rows = answer.json()
        return str(rows[0]["call_id"]) if rows else None

    call_id = await apoll(pending, timeout_s=30, what=f"{session_id} waiting for approval")
    return stream, call_id


def _client(service: ServiceProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=service.url, timeout=60, headers=HEADERS)


async def _metrics(service: ServiceProcess) -> dict[str, Any]:
    async with _client(service) as http:
        answer: dict[str, Any] = (await http.get("/v1/metrics")).json()
    return answer


async def _stream_here_decide_there(tmp_path: Path, postgres_url: str, **env: str) -> None:
    with replicas(tmp_path, postgres_url, 2, **env) as (a, b):
        async with _client(a) as on_a, _client(b) as on_b:
            stream, call_id = await _waiting(on_a, "across-1")
            answer = await on_b.post(
                f"/v1/approvals/{call_id}", json={"decision": "APPROVE"}, headers=DECIDER
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["resumed"] == "stream"
            outcome = await asyncio.wait_for(stream, timeout=30)
            audited = await decisions_audited(on_b)
            record = (
                await on_a.get("/v1/audit", params={"event_type": "hitl_decision_made"})
            ).json()[0]
        assert outcome.ok, outcome
        assert [r["decision"] for r in outcome.of("tool_result")] == ["APPROVE"]
        assert outcome.of("done")[0]["outcome"] == n.OUTCOME_COMPLETED
        assert audited == {call_id: 1}
        assert record["decided_by"] == USER
        # the trace of A's stream is whole, its waiting span reports the decision, linked
        # to the hitl.decision span B recorded it in (which links back to the waiting span)
        assert outcome.correlation_id is not None
        trace = whole_trace([a, b], outcome.correlation_id)
        assert trace_problems(trace) == []
        tool = next(s for s in trace if s["name"] == "execute_tool write_file")
        assert [e["name"] for e in tool["events"]].count(n.EVENT_HITL_DECISION_MADE) == 1
        made = next(e for e in tool["events"] if e["name"] == n.EVENT_HITL_DECISION_MADE)
        assert n.HITL_DECIDED_BY not in made["attributes"]  # content capture is off
        assert f"{n.HITL_DECIDED_BY}_sha256" in made["attributes"]
        decision = poll(
            lambda: next((s for s in spans(b) if s["name"] == n.SPAN_HITL_DECISION), None),
            timeout_s=20,
            what="B's hitl.decision span",
        )
        assert decision["context"]["span_id"].removeprefix("0x") in links(tool)
        assert tool["context"]["span_id"].removeprefix("0x") in links(decision)
        # counted once, by the replica whose stream waited
        counted = [
            (await _metrics(s))["hitl_decisions"].get("write_file", {}).get("APPROVE", 0)
            for s in (a, b)
        ]
        assert counted == [1, 0]
        resources = {s["resource"]["attributes"]["service.instance.id"] for s in spans(a)[:1]} | {
            s["resource"]["attributes"]["service.instance.id"] for s in spans(b)[:1]
        }
        assert len(resources) == 2


async def test_a_decision_on_b_reaches_the_stream_waiting_on_a(
    tmp_path: Path, postgres_url: str
) -> None:
    await _stream_here_decide_there(tmp_path, postgres_url)


async def test_a_decision_on_b_reaches_a_stream_on_a_real_openai_wire(
    tmp_path: Path, postgres_url: str
) -> None:
    async with ChatServer(scripted_responder) as model:
        await _stream_here_decide_there(
            tmp_path,
            postgres_url,
            LLM_PROVIDER="openai",
            OPENAI_BASE_URL=model.base_url,
            OPENAI_API_KEY="sk-replicas-test-0123456789",
        )
        assert model.requests  # the model answered over the wire


async def test_a_run_whose_replica_was_killed_resumes_on_the_deciding_replica(
    tmp_path: Path, postgres_url: str
) -> None:
    with replicas(tmp_path, postgres_url, 2) as (a, b):
        async with _client(a) as on_a, _client(b) as on_b:
            stream, call_id = await _waiting(on_a, "killed-1")
            a.kill9()
            await asyncio.wait_for(stream, timeout=30)  # its client sees the cut
            poll(
                lambda: lease_expired(postgres_url, "killed-1"),
                timeout_s=15,
                what="A's run lease to expire",
            )
            answer = await on_b.post(
                f"/v1/approvals/{call_id}", json={"decision": "APPROVE"}, headers=DECIDER
            )
            assert answer.status_code == 200, answer.text
            resumed = answer.json()
            session = (await on_b.get("/v1/sessions/killed-1")).json()
            audited = await decisions_audited(on_b)
    assert resumed["resumed"] == "here"
    assert resumed["outcome"] == n.OUTCOME_COMPLETED
    assert resumed["result"]["outcome"] == n.OUTCOME_COMPLETED
    assert resumed["text"]
    messages = session["messages"]
    assert [m["tool_call_id"] for m in messages if m["role"] == "tool"] == [call_id]
    assert messages[-1]["role"] == "assistant" and messages[-1]["content"] == resumed["text"]
    assert audited == {call_id: 1}


async def test_a_decision_racing_the_death_of_its_replica_is_resumed_by_the_sweeper(
    tmp_path: Path, postgres_url: str
) -> None:
    """A's lease still looks alive when B records the decision: B leaves the run to A's
    stream (``stream``); A is dead, so a sweeper resumes it once the lease lapses."""
    with replicas(tmp_path, postgres_url, 2) as (a, b):
        async with _client(a) as on_a, _client(b) as on_b:
            stream, call_id = await _waiting(on_a, "race-1")
            a.kill9()
            await asyncio.wait_for(stream, timeout=30)
            answer = await on_b.post(f"/v1/approvals/{call_id}", json={"decision": "APPROVE"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["resumed"] == "stream"

            async def finished() -> list[dict[str, Any]] | None:
                messages = (await on_b.get("/v1/sessions/race-1")).json()["messages"]
                done = messages[-1]["role"] == "assistant" and messages[-1]["content"]
                return messages if done else None

            messages = await apoll(finished, timeout_s=30, what="the swept run's answer")
            audited = await decisions_audited(on_b)
    assert [m["tool_call_id"] for m in messages if m["role"] == "tool"] == [call_id]
    assert audited == {call_id: 1}


async def test_one_decision_posted_to_three_replicas_at_once_is_taken_once(
    tmp_path: Path, postgres_url: str
) -> None:
    with replicas(tmp_path, postgres_url, 3) as services:
        clients = [_client(s) for s in services]
        try:
            stream, call_id = await _waiting(clients[0], "thrice-1")
            answers = await asyncio.gather(
                *(
                    c.post(f"/v1/approvals/{call_id}", json={"decision": "APPROVE"})
                    for _ in range(SAME_DECISION_PER_REPLICA)
                    for c in clients
                )
            )
            outcome = await asyncio.wait_for(stream, timeout=30)
            audited = await decisions_audited(clients[1])
            records = (
                await clients[2].get("/v1/audit", params={"event_type": "hitl_decision_made"})
            ).json()
        finally:
            for c in clients:
                await c.aclose()
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * (3 * SAME_DECISION_PER_REPLICA - 1), [a.text for a in answers]
    assert outcome.ok
    assert audited == {call_id: 1}
    assert records[0]["decided_by"] is None  # no gateway header: nobody named


def _listeners(database_url: str, count: int) -> list[int] | None:
    pids = listener_pids(database_url)
    return pids if len(pids) == count else None


async def _arrival_after_decision(on_a: httpx.AsyncClient, on_b: httpx.AsyncClient) -> float:
    """Seconds from B acknowledging a decision to A's stream reporting its tool result."""
    session_id = f"late-{random.randrange(10**9)}"
    stream, call_id = await _waiting(on_a, session_id)
    answer = await on_b.post(f"/v1/approvals/{call_id}", json={"decision": "REJECT"})
    acknowledged = time.monotonic()
    assert answer.status_code == 200, answer.text
    outcome = await asyncio.wait_for(stream, timeout=30)
    assert outcome.ok and outcome.of("tool_result")[0]["decision"] == "REJECT"
    # the stream ended right after its tool result: its end bounds the arrival
    return time.monotonic() - acknowledged


async def test_without_notifications_decisions_arrive_by_polling(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {"AGENT_RUNTIME_DECISION_NOTIFY": "false", "AGENT_RUNTIME_DECISION_POLL_S": "0.5"}
    with replicas(tmp_path, postgres_url, 2, **env) as (a, b):
        assert listener_pids(postgres_url) == []
        async with _client(a) as on_a, _client(b) as on_b:
            delays = [await _arrival_after_decision(on_a, on_b) for _ in range(3)]
    assert max(delays) < 0.5 + 1.5, delays


async def test_a_cut_listening_connection_delays_a_decision_by_the_poll_interval_at_most(
    tmp_path: Path, postgres_url: str
) -> None:
    with replicas(tmp_path, postgres_url, 2, AGENT_RUNTIME_DECISION_POLL_S="1") as (a, b):
        before = poll(
            lambda: _listeners(postgres_url, 2),
            timeout_s=15,
            what="both listeners",
        )
        async with _client(a) as on_a, _client(b) as on_b:
            session_id = "cut-1"
            stream, call_id = await _waiting(on_a, session_id)
            terminate(postgres_url, before)
            answer = await on_b.post(f"/v1/approvals/{call_id}", json={"decision": "APPROVE"})
            acknowledged = time.monotonic()
            assert answer.status_code == 200, answer.text
            outcome = await asyncio.wait_for(stream, timeout=30)
            delay = time.monotonic() - acknowledged
            # the listeners are back, on new connections, and deliver again
            after = poll(
                lambda: _listeners(postgres_url, 2),
                timeout_s=15,
                what="the listeners to reconnect",
            )
            again = await _arrival_after_decision(on_a, on_b)
    assert outcome.ok
    assert delay < 1.0 + 1.5, delay
    assert not set(before) & set(after)
    assert again < 1.0 + 1.5


CONVERSATIONS = 200


async def test_two_hundred_conversations_over_three_replicas(
    tmp_path: Path, postgres_url: str
) -> None:
    """Every stream on a random replica, every decision to a random replica: no request
    fails, every decision is audited once and counted once, every trace is whole, and no
    approval is left pending."""
    rng = random.Random(17)
    env = {"AGENT_RUNTIME_DB_POOL_SIZE": "20", "AGENT_RUNTIME_RUN_LEASE_S": "30"}
    with replicas(tmp_path, postgres_url, 3, **env) as services:
        limits = httpx.Limits(max_connections=CONVERSATIONS + 20)
        clients = [
            httpx.AsyncClient(base_url=s.url, timeout=120, headers=HEADERS, limits=limits)
            for s in services
        ]
        failures: list[str] = []

        async def conversation(index: int) -> Outcome:
            session_id = f"many-{index:03d}"
            stream, call_id = await _waiting(rng.choice(clients), session_id)
            decision = "APPROVE" if index % 2 else "REJECT"
            answer = await rng.choice(clients).post(
                f"/v1/approvals/{call_id}", json={"decision": decision}, headers=DECIDER
            )
            if answer.status_code != 200 or answer.json()["resumed"] != "stream":
                failures.append(f"{session_id}: {answer.status_code} {answer.text[:200]}")
            return await stream

        try:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(conversation(i) for i in range(CONVERSATIONS))), timeout=240
            )
            audited = await decisions_audited(clients[0])
            left = (await clients[1].get("/v1/approvals")).json()
            counted, clusters = 0, []
            for service in services:
                seen = await _metrics(service)
                counted += sum(seen["hitl_decisions"].get("write_file", {}).values())
                clusters.append(seen["cluster"])
        finally:
            for client in clients:
                await client.aclose()
        traces = {o.correlation_id: whole_trace(services, str(o.correlation_id)) for o in outcomes}
    assert failures == []
    assert [o.session_id for o in outcomes if not o.ok] == []
    assert len(audited) == CONVERSATIONS and set(audited.values()) == {1}
    assert counted == CONVERSATIONS
    assert left == []
    facts = [{k: c[k] for k in ("sessions", "running", "pending_approvals")} for c in clusters]
    assert facts == [{"sessions": CONVERSATIONS, "running": 0, "pending_approvals": 0}] * 3
    assert [c["oldest_pending_age_s"] for c in clusters] == [0.0] * 3  # none waits
    broken = {t: p for t, trace in traces.items() if (p := trace_problems(trace))}
    assert broken == {}
    for trace in traces.values():
        tool = next(s for s in trace if s["name"] == "execute_tool write_file")
        assert [e["name"] for e in tool["events"]].count(n.EVENT_HITL_DECISION_MADE) == 1
