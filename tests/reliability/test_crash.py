"""Item 2, crash safety of the audit trail: ``kill -9`` the real server in the middle of a
load of approvals and decisions, restart it on the same data directory. Every decision the
API acknowledged is in the audit log exactly once, every approval not decided is still
pending and can be decided, and the outbox ships every record at least once under the same
record id (idempotent downstream)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import httpx

from agent_runtime.store import DEFAULT_SQLITE_FILENAME
from telemetry import names as n
from tests.reliability.support import apoll, converse, poll, running_service, scale

APPROVALS = scale(24, 120)
EXTRA_STREAMS = scale(12, 60)
_RECORD_ID = re.compile(r'"' + re.escape(n.AUDIT_RECORD_ID) + r'":\s*"([0-9a-f]{32})"')
# Audit log records go to stdout, so what the outbox shipped can be read back. The first
# process batches for a minute, so everything it wrote is still unshipped when it is
# killed: only the restarted process's outbox re-send can deliver those records.
TELEMETRY = {"OTEL_LOGS_EXPORTER": "console", "AGENT_RUNTIME_AUDIT_RESEND_INTERVAL_S": "0.5"}
# The killed process's streams held their sessions' run leases. A SQLite store is one
# process's, so the restarted one drops them at start; on PostgreSQL another replica may
# hold them, so they last until they expire: short here, so the late decisions find them
# expired and resume their runs themselves ("here").
LEASE = {"AGENT_RUNTIME_RUN_LEASE_S": "2"}
BEFORE = {
    **TELEMETRY,
    **LEASE,
    "OTEL_BLRP_SCHEDULE_DELAY": "60000",
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "4096",
    "OTEL_BLRP_MAX_QUEUE_SIZE": "8192",
}
AFTER = {**TELEMETRY, **LEASE, "OTEL_BLRP_SCHEDULE_DELAY": "50"}


async def test_kill_9_mid_load_loses_no_acknowledged_decision(
    tmp_path: Path, store_env: dict[str, str]
) -> None:
    """On both backends: the restarted process reads the same SQLite file, or the same
    PostgreSQL database (which kept running)."""
    data = tmp_path / "data"
    acked: dict[str, str] = {}  # call id -> decision, for every 2xx
    unacked: set[str] = set()  # decisions sent whose answer never came
    with running_service(tmp_path, data, name="before", **BEFORE, **store_env) as first:
        limits = httpx.Limits(max_connections=APPROVALS + EXTRA_STREAMS + 8)
        async with httpx.AsyncClient(base_url=first.url, timeout=30, limits=limits) as http:
            streams = [
                asyncio.create_task(converse(http, f"crash-{i:03d}", "Create a sorting function"))
                for i in range(APPROVALS)
            ]

            async def all_pending() -> list[dict] | None:
                pending = (await http.get("/v1/approvals")).json()
                return pending if len(pending) == APPROVALS else None

            pending = await apoll(all_pending, timeout_s=60, what="every approval pending")
            call_ids = sorted(p["call_id"] for p in pending)
            to_decide = call_ids[: (2 * APPROVALS) // 3]
            kill_after = len(to_decide) // 2

            async def decide(index: int, call_id: str) -> None:
                decision = "APPROVE" if index % 2 == 0 else "REJECT"
                try:
                    response = await http.post(
                        f"/v1/approvals/{call_id}", json={"decision": decision}
                    )
                except httpx.TransportError:
                    unacked.add(call_id)
                    return
                assert response.status_code == 200, response.text
                acked[call_id] = decision

            # more load while the decisions fly: new conversations reaching approvals
            extra = [
                asyncio.create_task(converse(http, f"crash-x{i:03d}", "Create a sorting function"))
                for i in range(EXTRA_STREAMS)
            ]
            deciders = [asyncio.create_task(decide(i, c)) for i, c in enumerate(to_decide)]
            await apoll(
                lambda: _ready(len(acked) >= kill_after),
                timeout_s=60,
                what=f"{kill_after} acknowledged decisions",
                every_s=0.001,
            )
            first.kill9()  # mid-load: decisions and streams are in flight
            await asyncio.wait_for(asyncio.gather(*deciders, *streams, *extra), timeout=60)
        stdout_before = first.stdout()
    assert (data / DEFAULT_SQLITE_FILENAME).exists() == (not store_env)  # the backend asked
    in_flight = len(to_decide) - len(acked) - len(unacked)
    assert in_flight == 0

    with running_service(tmp_path, data, name="after", **AFTER, **store_env) as second:
        async with httpx.AsyncClient(base_url=second.url, timeout=30) as http:
            decided = (
                await http.get(
                    "/v1/audit",
                    params={"event_type": "hitl_decision_made", "limit": 10_000},
                )
            ).json()
            still_pending = {p["call_id"] for p in (await http.get("/v1/approvals")).json()}

            async def leases_expired() -> bool | None:
                cluster = (await http.get("/v1/metrics")).json()["cluster"]
                return True if cluster is not None and cluster["running"] == 0 else None

            await apoll(leases_expired, timeout_s=30, what="the killed process's leases expired")
            # every pending approval can still be decided after the crash
            late = {
                call_id: await http.post(f"/v1/approvals/{call_id}", json={"decision": "APPROVE"})
                for call_id in sorted(still_pending)
            }
            replay = [
                (await http.post(f"/v1/approvals/{c}", json={"decision": "REJECT"})).status_code
                for c in sorted(acked)
            ]
            audit = (await http.get("/v1/audit", params={"limit": 10_000})).json()

            def shipped() -> set[str] | None:
                ids = set(_RECORD_ID.findall(stdout_before + second.stdout()))
                return ids if {r["record_id"] for r in audit} <= ids else None

            # the outbox re-sends what the killed process never shipped
            exported = poll(shipped, timeout_s=20, what="every audit record shipped")
            emitted = Counter(_RECORD_ID.findall(stdout_before + second.stdout()))

    shipped_by_killed = set(_RECORD_ID.findall(stdout_before))
    decided_ids = Counter(r["call_id"] for r in decided)
    # every acknowledged decision is in the audit log, once, with the decision acknowledged
    assert {c: decided_ids[c] for c in acked} == dict.fromkeys(acked, 1)
    by_call = {r["call_id"]: r for r in decided}
    assert {c: by_call[c]["decision"] for c in acked} == acked
    assert not (set(acked) & still_pending)
    # approvals nobody decided (and not in flight) are still pending after the restart
    never_sent = set(call_ids) - set(to_decide)
    assert never_sent <= still_pending
    assert all(r.status_code == 200 and r.json()["resumed"] == "here" for r in late.values())
    assert {r.json()["result"]["outcome"] for r in late.values()} <= {"completed"}
    assert replay == [409] * len(acked)
    # no duplicate record ids, and no call decided twice in the log
    assert len({r["record_id"] for r in audit}) == len(audit)
    final = Counter(r["call_id"] for r in audit if r["event_type"] == "hitl_decision_made")
    assert max(final.values()) == 1
    lost_unacked = [c for c in unacked if c not in final and c not in still_pending]
    resent = sum(emitted.values()) - len(emitted)
    print(
        f"\ncrash ({'postgresql' if store_env else 'sqlite'}): "
        f"{len(call_ids)} approvals, {len(acked)} decisions acknowledged before "
        f"kill -9, {len(unacked)} cut off ({len(lost_unacked)} committed but unaudited), "
        f"{len(still_pending)} pending after restart and decided; {len(audit)} audit "
        f"records checked, {len(exported)} shipped ({len(shipped_by_killed)} by the killed "
        f"process, the rest by the re-send; {resent} re-sent copies under the same id)"
    )


async def _ready(value: bool) -> bool:
    return value
