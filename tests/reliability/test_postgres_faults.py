"""PostgreSQL faults against the real service process (issue 16, item 4).

- Unreachable at start-up: the service starts, ``/readyz`` answers 503, what needs the
  store answers 503 ``store_unavailable`` (the JSON error shape, never a 500); once the
  database is up, ``/readyz`` turns 200 with no restart of the service.
- A stream whose store dies, or whose last write times out, ends with an ``error`` event
  ``store_unavailable``, then ``done``.
- Restarted under load (down until a request is refused): every request ends (a 503, an
  ``error`` event, or its answer), none is cut off or a 500, the pool reconnects by itself,
  and nothing acknowledged (2xx) is lost.
- An exhausted pool answers 503 within its wait.
- A statement blocked by a lock ends at the statement timeout (the setting) with a 503.
- The password of ``DATABASE_URL`` is in no log line, span, error body or ``/readyz``:
  spans and log records go to the console exporters, so the process's stdout and stderr
  hold everything it says.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from scripts.processes import PostgresServer

from tests.reliability.support import (
    KEY,
    Outcome,
    ServiceProcess,
    apoll,
    converse,
    leaks,
    running_service,
)
from tests.support import postgres

TELEMETRY = {
    "OTEL_TRACES_EXPORTER": "console",
    "OTEL_LOGS_EXPORTER": "console",
    "OTEL_BSP_SCHEDULE_DELAY": "50",
    "OTEL_BLRP_SCHEDULE_DELAY": "50",
    "AGENT_RUNTIME_INTERNAL_KEY": KEY,
}
APPROVAL = "Create a sorting function"
QUESTION = "What is a closure?"


def _secrets(url: str) -> list[str]:
    """The password as it is, and as it is spelled in the URL."""
    raw = urllib.parse.urlsplit(url).password
    assert raw and len(raw) >= 12, "the test server's password is too weak to search for"
    return [raw, urllib.parse.quote(raw, safe="")]


def _unavailable(response: httpx.Response) -> bool:
    """A 503 with the JSON error shape and the store's code."""
    return (
        response.status_code == 503
        and response.headers["content-type"].startswith("application/json")
        and response.json()["error"]["code"] == "store_unavailable"
        and bool(response.json()["error"]["message"])
    )


def _said(service: ServiceProcess) -> str:
    return service.stdout() + service.stderr()


async def _ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200


async def test_unreachable_at_start_the_service_answers_503_then_ready_without_restart(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    bodies: list[str] = []
    postgres.stop(postgres_server)
    try:
        with running_service(
            tmp_path,
            tmp_path / "data",
            name="early",
            health_path="/healthz",  # it serves, though its store does not answer
            DATABASE_URL=postgres_url,
            **TELEMETRY,
        ) as service:
            async with httpx.AsyncClient(
                base_url=service.url, timeout=30, headers=service.headers
            ) as http:
                ready = await http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["error"]["code"] == "not_ready"
                trace = "0af7651916cd43dd8448eb211c80319c"
                refused = [
                    await http.post("/v1/sessions", json={"session_id": "early-1"}),
                    await http.get("/v1/sessions/early-1"),
                    await http.delete("/v1/sessions/early-1"),
                    await http.get("/v1/approvals"),
                    await http.post("/v1/approvals/call_x", json={"decision": "APPROVE"}),
                    await http.get("/v1/audit"),
                    await http.post(f"/v1/traces/{trace}/feedback", json={"score": 1}),
                    await http.post(
                        "/agent/message/stream",
                        json={"session_id": "early-2", "message": QUESTION},
                    ),
                ]
                assert [(r.request.url.path, _unavailable(r)) for r in refused] == [
                    (r.request.url.path, True) for r in refused
                ]
                # what needs no store still answers; nothing is a 500
                others = [
                    await http.get("/v1/metrics"),
                    await http.get(f"/v1/traces/{trace}/timeline"),
                ]
                assert [r.status_code for r in others if r.status_code >= 500] == []
                bodies += [r.text for r in (ready, *refused)]
                postgres.start(postgres_server)
                await apoll(lambda: _ready(http), timeout_s=30, what="/readyz 200")
                bodies.append((await http.get("/readyz")).text)
                created = await http.post("/v1/sessions", json={"session_id": "early-1"})
                assert created.status_code == 201, created.text
                answered = await converse(http, "early-1", QUESTION, headers=service.headers)
                assert answered.ok, (answered.status, answered.error, answered.events)
            pid_alive = service.process.poll() is None
            said = _said(service)
    finally:
        if not postgres_server.running:
            postgres.start(postgres_server)
    assert pid_alive, "the service was restarted or died"
    assert leaks(_secrets(postgres_url), "the service's output", said) == []
    assert leaks(_secrets(postgres_url), "the answers", "\n".join(bodies)) == []


async def test_a_wrong_password_is_never_printed(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    parts = urllib.parse.urlsplit(postgres_url)
    wrong = "wrong-Pa55word-4f1c9e7d2b"
    netloc = f"{parts.username}:{wrong}@{parts.hostname}:{parts.port}"
    url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    with running_service(
        tmp_path, tmp_path / "data", name="wrong", health_path="/healthz", DATABASE_URL=url
    ) as service:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
            ready = await http.get("/readyz")
            refused = await http.post("/v1/sessions", json={})
        said = _said(service)
    assert ready.status_code == 503 and _unavailable(refused)
    assert "does not answer" in said, "the store's warning was not logged at all"
    assert leaks([wrong], "the service's output", said) == []
    assert leaks([wrong], "the answers", ready.text + refused.text) == []


async def test_a_stream_whose_store_dies_ends_with_an_error_event_then_done(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    """The stream waits for a human; the database goes away; the approval times out and
    its timeout cannot be stored: the stream says so and ends, its lease lapsing by itself."""
    env = {
        "DATABASE_URL": postgres_url,
        "AGENT_RUNTIME_APPROVAL_TIMEOUT_S": "3",
        # each store call of the ending stream waits for the pool 3 s + this, then fails
        "AGENT_RUNTIME_DB_STATEMENT_TIMEOUT_S": "1",
        **TELEMETRY,
    }
    try:
        with running_service(tmp_path, tmp_path / "data", name="dies", **env) as service:
            async with httpx.AsyncClient(
                base_url=service.url, timeout=30, headers=service.headers
            ) as http:
                waiting = await converse(http, "dies-1", APPROVAL, stop_at="approval_required")
                assert waiting.of("approval_required"), waiting.events
                stream = asyncio.create_task(converse(http, "dies-2", APPROVAL))

                async def pending() -> bool:
                    body = (await http.get("/v1/approvals", params={"session_id": "dies-2"})).json()
                    return len(body) == 1

                await apoll(pending, timeout_s=20, what="the approval pending")
                postgres.stop(postgres_server)
                ended = await asyncio.wait_for(stream, timeout=30)
            said = _said(service)
    finally:
        if not postgres_server.running:
            postgres.start(postgres_server)
    names = [e.event for e in ended.events]
    assert names[-2:] == ["error", "done"], names
    assert ended.of("error")[0]["code"] == "store_unavailable"
    assert ended.of("done")[0]["outcome"] == "error"
    assert leaks(_secrets(postgres_url), "the service's output", said) == []


_SLOW_AGENT_UPDATE = """
CREATE FUNCTION slow_agent_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$;
CREATE TRIGGER slow_agent_update BEFORE UPDATE OF agent ON sessions
    FOR EACH ROW EXECUTE FUNCTION slow_agent_update();
"""


async def test_a_run_whose_last_write_times_out_ends_with_an_error_event_then_done(
    tmp_path: Path, postgres_url: str
) -> None:
    """The run has answered; keeping the session's agent, its last write, outlasts the
    statement timeout (a trigger sleeps in it): the stream ends with ``error``
    ``store_unavailable`` and ``done``, not cut off with a 500 in the log."""
    env = {"DATABASE_URL": postgres_url, "AGENT_RUNTIME_DB_STATEMENT_TIMEOUT_S": "1"}
    with running_service(tmp_path, tmp_path / "data", name="slow", **env) as service:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(_SLOW_AGENT_UPDATE.encode())
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
            ended = await converse(http, "slow-1", QUESTION)
        said = _said(service)
    names = [e.event for e in ended.events]
    assert ended.status == 200 and names[0] == "meta" and names[-2:] == ["error", "done"], names
    assert "text" in names  # it had answered
    assert ended.of("error")[0]["code"] == "store_unavailable"
    assert ended.of("done")[0]["outcome"] == "error"
    assert "unhandled error" not in said and "Exception in ASGI" not in said


def _failed(outcome: Outcome) -> str | None:
    """Why a stream's ending is not one a restart may cause (None: it is)."""
    if outcome.error is not None and outcome.status != 503:
        return f"{outcome.status} {outcome.error}"  # a transport error, a hang, a 500
    if outcome.status == 503:
        return None if '"store_unavailable"' in (outcome.error or "") else outcome.error
    names = [e.event for e in outcome.events]
    if not names or names[0] != "meta" or names[-1] != "done":
        return f"events {names}"
    codes = {e["code"] for e in outcome.of("error")}
    return None if codes <= {"store_unavailable"} else f"error events {codes}"


async def test_a_restart_under_load_loses_nothing_acknowledged(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    env = {"DATABASE_URL": postgres_url, "AGENT_RUNTIME_DB_STATEMENT_TIMEOUT_S": "2", **TELEMETRY}
    created: dict[str, int] = {}  # session id -> status
    decided: dict[str, int] = {}  # call id -> status of its last decision
    statuses: list[int] = []
    outcomes: list[Outcome] = []
    stop, restarting = asyncio.Event(), asyncio.Event()
    flying = [0]  # requests sent and not answered yet

    @contextlib.contextmanager
    def in_flight() -> Iterator[None]:
        flying[0] += 1
        try:
            yield
        finally:
            flying[0] -= 1

    with running_service(tmp_path, tmp_path / "data", name="restart", **env) as service:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(
            base_url=service.url, timeout=30, headers=service.headers, limits=limits
        ) as http:
            waiting = [
                asyncio.create_task(converse(http, f"rs-a{i:02d}", APPROVAL)) for i in range(12)
            ]

            async def all_pending() -> list[dict[str, Any]] | None:
                body = (await http.get("/v1/approvals")).json()
                return body if len(body) == len(waiting) else None

            call_ids = [p["call_id"] for p in await apoll(all_pending, timeout_s=30, what="12")]

            async def creator() -> None:
                index = 0
                while not stop.is_set():
                    session_id = f"rs-s{index:04d}"
                    with in_flight():
                        response = await http.post("/v1/sessions", json={"session_id": session_id})
                    created[session_id] = response.status_code
                    statuses.append(response.status_code)
                    index += 1

            async def asker(worker: int) -> None:
                index = 0
                while not stop.is_set():
                    with in_flight():
                        outcome = await converse(http, f"rs-q{worker}-{index:03d}", QUESTION)
                    outcomes.append(outcome)
                    index += 1

            async def decider() -> None:
                await restarting.wait()  # the decisions go while the database restarts
                for call_id in call_ids:
                    with in_flight():
                        response = await http.post(
                            f"/v1/approvals/{call_id}", json={"decision": "APPROVE"}
                        )
                    decided[call_id] = response.status_code
                    statuses.append(response.status_code)
                    await asyncio.sleep(0.1)  # pacing: the decisions span the restart

            workers = [creator(), decider(), *(asker(w) for w in range(4))]
            load = asyncio.gather(*(asyncio.create_task(w) for w in workers))
            await apoll(
                lambda: _true(sum(s == 201 for s in created.values()) >= 5),
                timeout_s=30,
                what="sessions created before the restart",
            )
            pid = service.pid
            flying_at_restart = flying[0]
            restarting.set()
            # Down long enough for the requests waiting on the pool to give up (a fast
            # restart alone is mostly absorbed by that wait): until one was answered 503.
            await asyncio.to_thread(postgres.stop, postgres_server)

            async def refused_one() -> bool:
                return 503 in statuses or any(o.status == 503 for o in outcomes)

            try:
                await apoll(refused_one, timeout_s=30, what="a 503 while the database is down")
            finally:
                await asyncio.to_thread(postgres.start, postgres_server)
            await apoll(lambda: _ready(http), timeout_s=30, what="the pool reconnected")
            after = len(created)
            await apoll(
                lambda: _true(len(created) >= after + 5),
                timeout_s=30,
                what="requests served after the restart",
            )
            stop.set()
            await asyncio.wait_for(load, timeout=60)
            # the approvals whose decision a 503 refused are decided now
            for call_id, status in list(decided.items()):
                if status != 200:
                    retry = await http.post(
                        f"/v1/approvals/{call_id}", json={"decision": "APPROVE"}
                    )
                    assert retry.status_code in (200, 409), retry.text
                    decided[call_id] = 200 if retry.status_code == 200 else status
            outcomes += await asyncio.wait_for(asyncio.gather(*waiting), timeout=60)
            # nothing acknowledged is lost
            missing = [
                sid
                for sid, status in created.items()
                if status == 201 and (await http.get(f"/v1/sessions/{sid}")).status_code != 200
            ]
            audit = (
                await http.get(
                    "/v1/audit", params={"event_type": "hitl_decision_made", "limit": 10_000}
                )
            ).json()
            still_pending = {p["call_id"] for p in (await http.get("/v1/approvals")).json()}
        alive = service.process.poll() is None and service.pid == pid
        said = _said(service)
    assert alive, "the service process was replaced or died"
    assert flying_at_restart > 0, "no request was in flight when the database restarted"
    assert set(statuses) <= {200, 201, 503}, sorted(set(statuses))
    bad = [f for f in map(_failed, outcomes) if f]
    assert bad == [], bad
    assert "unhandled error" not in said and "Exception in ASGI" not in said, "a 500"
    assert missing == []
    acked = {c for c, status in decided.items() if status == 200}
    audited = {r["call_id"] for r in audit}
    assert sorted(acked - audited) == [], "acknowledged decisions missing from the audit"
    assert not (acked & still_pending)
    assert leaks(_secrets(postgres_url), "the service's output", said) == []
    refused = sum(s == 503 for s in statuses) + sum(o.status == 503 for o in outcomes)
    cut = sum(bool(o.of("error")) for o in outcomes)
    print(
        f"\npostgres restart: {len(statuses)} requests and {len(outcomes)} streams "
        f"({flying_at_restart} in flight at the restart), "
        f"{refused} answered 503, {cut} streams ended with an error event, "
        f"{sum(s == 201 for s in created.values())} sessions and {len(acked)} decisions "
        "acknowledged, all found after"
    )


async def test_a_statement_blocked_by_a_lock_ends_at_the_statement_timeout(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {"DATABASE_URL": postgres_url, "AGENT_RUNTIME_DB_STATEMENT_TIMEOUT_S": "1"}
    with running_service(tmp_path, tmp_path / "data", name="lock", **env) as service:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
            assert (await http.post("/v1/sessions", json={"session_id": "lk"})).status_code == 201
            with psycopg.connect(postgres_url) as locker:
                locker.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
                started = time.monotonic()
                blocked = await http.get("/v1/sessions/lk")
                took = time.monotonic() - started
                started = time.monotonic()
                stream = await http.post(
                    "/agent/message/stream", json={"session_id": "lk", "message": QUESTION}
                )
                stream_took = time.monotonic() - started
                locker.rollback()
            after = await http.get("/v1/sessions/lk")
    assert _unavailable(blocked) and _unavailable(stream)
    assert 1.0 <= took < 3.0, f"the blocked read answered after {took:.2f} s"
    assert 1.0 <= stream_took < 3.0, f"the blocked stream answered after {stream_took:.2f} s"
    assert after.status_code == 200
    print(f"\nstatement timeout 1 s: blocked read {took:.2f} s, stream {stream_took:.2f} s")


async def test_an_exhausted_pool_answers_503_within_its_wait_bound(
    tmp_path: Path, postgres_url: str
) -> None:
    """One connection, every statement blocked: the requests queue for it, and each ends
    within the pool's wait (connect timeout 3 s + statement timeout) plus its own statement,
    with a 503; none waits forever."""
    env = {
        "DATABASE_URL": postgres_url,
        "AGENT_RUNTIME_DB_STATEMENT_TIMEOUT_S": "1",
        "AGENT_RUNTIME_DB_POOL_SIZE": "1",
    }
    with running_service(tmp_path, tmp_path / "data", name="pool", **env) as service:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
            assert (await http.post("/v1/sessions", json={"session_id": "pl"})).status_code == 201

            async def timed() -> tuple[httpx.Response, float]:
                started = time.monotonic()
                response = await http.get("/v1/sessions/pl")
                return response, time.monotonic() - started

            with psycopg.connect(postgres_url) as locker:
                locker.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
                answers = await asyncio.gather(*(timed() for _ in range(8)))
                locker.rollback()
            after = await http.get("/v1/sessions/pl")
    assert all(_unavailable(response) for response, _ in answers)
    slowest = max(took for _, took in answers)
    assert slowest < 3 + 1 + 1 + 1.5, f"a request waited {slowest:.2f} s"
    assert after.status_code == 200
    print(f"\npool of 1, 8 blocked requests: all 503, the slowest after {slowest:.2f} s")


async def _true(value: bool) -> bool:
    return value
