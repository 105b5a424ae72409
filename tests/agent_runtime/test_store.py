"""The store contract, on both backends (the embedded SQLite file and a real PostgreSQL
server): session lifecycle, transcript order, approval compare-and-set, the audit outbox,
restart survival; then what is particular to each."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from scripts.processes import PostgresServer

from agent_runtime.errors import SessionAlreadyExists, SessionNotFound, StoreUnavailable
from agent_runtime.store import (
    SCHEMA_VERSION,
    ApprovalRecord,
    MessageRecord,
    SchemaTooNew,
    SessionRecord,
    SQLiteStore,
    Store,
    open_store,
)
from agent_runtime.store.postgres import PostgresStore, redacted_url
from telemetry import AuditRecord
from tests.support.postgres import fresh_database, unreachable


@pytest.fixture
async def store(database_url: str | None, tmp_path: Path) -> AsyncIterator[Store]:
    """The store ``DATABASE_URL`` picks: each test runs on SQLite, then on PostgreSQL."""
    opened = open_store(database_url, tmp_path / "db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "db" / "test.db") as opened:
        yield opened


def approval(call_id: str = "call_1", session_id: str = "s1", **changes: object) -> ApprovalRecord:
    record = ApprovalRecord(
        call_id=call_id,
        session_id=session_id,
        tool="write_file",
        arguments={"path": "a.py", "content": "print(1)"},
        agent="coder",
        reason="writes to the workspace",
        timeout_s=300.0,
        requested_at=100.0,
        deadline=400.0,
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        trace_flags=1,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


async def test_each_store_satisfies_the_store_protocol_and_is_migrated(store: Store) -> None:
    assert isinstance(store, Store)
    assert await store.ping() is True
    assert await store.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]


async def test_sqlite_opens_in_wal_mode(sqlite_store: Store) -> None:
    with sqlite3.connect(sqlite_store.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_ping_is_false_when_closed(tmp_path: Path) -> None:
    closed = SQLiteStore(tmp_path / "x.db")
    assert await closed.ping() is False
    with pytest.raises(RuntimeError, match="not open"):
        await closed.get_session("s1")


async def test_session_lifecycle_with_soft_delete(store: Store) -> None:
    await store.insert_session(SessionRecord("s1", created_at=10.0, agent=None))
    assert await store.get_session("s1") == SessionRecord("s1", 10.0, None)

    await store.set_session_agent("s1", "coder")
    assert (await store.get_session("s1")) == SessionRecord("s1", 10.0, "coder")

    assert await store.soft_delete_session("s1", deleted_at=20.0) is True
    assert await store.get_session("s1") is None
    assert await store.soft_delete_session("s1", deleted_at=30.0) is False
    with pytest.raises(SessionNotFound):
        await store.set_session_agent("s1", "ask")


async def test_insert_session_refuses_existing_and_deleted_ids(store: Store) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    with pytest.raises(SessionAlreadyExists):
        await store.insert_session(SessionRecord("s1", 2.0, None))
    await store.soft_delete_session("s1", 3.0)
    with pytest.raises(SessionAlreadyExists):
        await store.insert_session(SessionRecord("s1", 4.0, None))


async def test_missing_session_reads_as_none(store: Store) -> None:
    assert await store.get_session("nope") is None
    assert await store.soft_delete_session("nope", 1.0) is False


async def test_messages_keep_append_order_and_tool_calls(store: Store) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    calls = [{"id": "c1", "name": "read_file", "arguments": {"path": "a.py"}}]
    records = [
        MessageRecord("s1", "user", "fix the bug", None, 5.0),
        MessageRecord("s1", "assistant", None, "debug", 5.0, tool_calls=calls),
        MessageRecord("s1", "tool", "print(1)", "debug", 4.0, tool_call_id="c1"),
        MessageRecord("s1", "assistant", "done", "debug", 6.0),
    ]
    stored = [await store.append_message(record) for record in records]
    assert [r.seq for r in stored] == sorted({r.seq for r in stored})  # increasing, distinct
    assert await store.list_messages("s1") == stored
    assert [replace(r, seq=0) for r in stored] == records
    assert await store.list_messages("s1", offset=1, limit=2) == stored[1:3]
    assert await store.count_messages("s1") == 4
    assert await store.list_messages("other") == []


async def test_concurrent_appends_are_all_kept(store: Store) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    await asyncio.gather(
        *(store.append_message(MessageRecord("s1", "user", str(i), None, 1.0)) for i in range(50))
    )
    contents = [m.content for m in await store.list_messages("s1")]
    assert sorted(contents, key=lambda c: int(c or 0)) == [str(i) for i in range(50)]


async def test_append_message_to_missing_or_deleted_session_raises(store: Store) -> None:
    with pytest.raises(SessionNotFound):
        await store.append_message(MessageRecord("ghost", "user", "hi", None, 1.0))
    await store.insert_session(SessionRecord("s1", 1.0, None))
    await store.soft_delete_session("s1", 2.0)
    with pytest.raises(SessionNotFound):
        await store.append_message(MessageRecord("s1", "user", "hi", None, 3.0))


async def test_approval_round_trip_and_pending_listing(store: Store) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    await store.insert_session(SessionRecord("s2", 1.0, None))
    first = approval("call_1", "s1", requested_at=100.0)
    second = approval("call_2", "s2", requested_at=50.0)
    third = approval("call_3", "s1", requested_at=200.0)
    for record in (first, second, third):
        await store.insert_approval(record)

    assert await store.get_approval("call_1") == first
    assert await store.get_approval("missing") is None
    assert [a.call_id for a in await store.list_pending_approvals(None)] == [
        "call_2",
        "call_1",
        "call_3",
    ]
    assert [a.call_id for a in await store.list_pending_approvals("s1")] == ["call_1", "call_3"]

    assert await store.record_decision(
        "call_1",
        decision="EDIT",
        arguments={"path": "b.py", "content": "x"},
        feedback="rename it",
        outcome="completed",
        decided_at=150.0,
    )
    decided = await store.get_approval("call_1")
    assert decided == replace(
        first,
        status="decided",
        decision="EDIT",
        decided_arguments={"path": "b.py", "content": "x"},
        feedback="rename it",
        outcome="completed",
        decided_at=150.0,
    )
    assert [a.call_id for a in await store.list_pending_approvals("s1")] == ["call_3"]


async def test_insert_approval_checks_session_and_duplicate_ids(store: Store) -> None:
    with pytest.raises(SessionNotFound):
        await store.insert_approval(approval(session_id="ghost"))
    await store.insert_session(SessionRecord("s1", 1.0, None))
    await store.insert_approval(approval())
    with pytest.raises(ValueError, match="already exists"):
        await store.insert_approval(approval())


async def test_concurrent_decisions_exactly_one_wins(store: Store) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    await store.insert_approval(approval())
    decisions = ["APPROVE", "REJECT", "EDIT", "APPROVE", "REJECT"] * 4
    results = await asyncio.gather(
        *(
            store.record_decision(
                "call_1",
                decision=d,
                arguments=None,
                feedback=None,
                outcome=None,
                decided_at=float(i),
            )
            for i, d in enumerate(decisions)
        )
    )
    assert results.count(True) == 1
    winner = results.index(True)
    stored = await store.get_approval("call_1")
    assert stored is not None
    assert (stored.status, stored.decision, stored.decided_at) == (
        "decided",
        decisions[winner],
        float(winner),
    )


async def test_decision_on_unknown_approval_returns_false(store: Store) -> None:
    assert not await store.record_decision(
        "nope", decision="APPROVE", arguments=None, feedback=None, outcome=None, decided_at=1.0
    )


async def test_state_survives_reopening_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    async with SQLiteStore(path) as first:
        await first.insert_session(SessionRecord("s1", 1.0, "coder"))
        await first.append_message(MessageRecord("s1", "user", "hello", None, 2.0))
        await first.insert_approval(approval())
        await first.insert_session(SessionRecord("gone", 1.0, None))
        await first.soft_delete_session("gone", 2.0)

    async with SQLiteStore(path) as second:
        assert await second.schema_version() == SCHEMA_VERSION
        assert await second.get_session("s1") == SessionRecord("s1", 1.0, "coder")
        assert await second.get_session("gone") is None
        assert [m.content for m in await second.list_messages("s1")] == ["hello"]
        assert [a.call_id for a in await second.list_pending_approvals(None)] == ["call_1"]


async def test_open_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    async with SQLiteStore(path):
        pass
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer"):
        await SQLiteStore(path).open()


def test_open_store_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    store = open_store(None, tmp_path)
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "agent-runtime.db"


def test_open_store_accepts_sqlite_urls(tmp_path: Path) -> None:
    absolute = open_store(f"sqlite:///{tmp_path}/x.db", Path("ignored"))
    assert isinstance(absolute, SQLiteStore)
    assert absolute.path == tmp_path / "x.db"
    relative = open_store("sqlite:///rel/y.db", Path("ignored"))
    assert isinstance(relative, SQLiteStore)
    assert relative.path == Path("rel/y.db")


@pytest.mark.parametrize(
    "url",
    ["postgresql://user:s3cret@db:5433/agent", "postgres://user:s3cret@db:5433/agent"],
)
def test_open_store_takes_postgresql_urls_and_never_repeats_the_password(url: str) -> None:
    store = open_store(url, Path("."))
    assert isinstance(store, PostgresStore)
    assert "s3cret" not in repr(store)
    shown = redacted_url(url)
    assert shown.endswith("://db:5433/agent") and "user" not in shown and "s3cret" not in shown


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://", "sqlite:///:memory:", "nonsense"])
def test_open_store_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url, Path("."))


# --- the audit outbox ------------------------------------------------------------------


def audit_record(
    session_id: str = "s1", event_type: str = "agent_switched", **changes: object
) -> AuditRecord:
    record = AuditRecord(
        record_id=uuid.uuid4().hex,
        timestamp=time.time(),
        event_type=event_type,
        session_id=session_id,
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        attributes={"gen_ai.agent.name": "coder"},
        summary="a → b",
        otel_name="agent.switched",
        details={"from_agent": "a", "to_agent": "b"},
    )
    return replace(record, **changes)  # type: ignore[arg-type]


async def test_audit_records_are_written_once_and_read_in_order(store: Store) -> None:
    first, second, third = (
        audit_record("a"),
        audit_record("b", "hitl_decision_made"),
        audit_record("a"),
    )
    await store.write_audit([first, second])
    await store.write_audit([second, third])  # a re-written record is not doubled
    assert await store.query_audit(session_id=None, event_type=None, limit=10) == [
        first,
        second,
        third,
    ]
    assert await store.query_audit(session_id="a", event_type=None, limit=10) == [first, third]
    assert await store.query_audit(session_id=None, event_type="hitl_decision_made", limit=10) == [
        second
    ]
    assert await store.query_audit(session_id="a", event_type="agent_switched", limit=1) == [third]
    assert store.query_audit_blocking(session_id="b", event_type=None, limit=10) == [second]
    assert await store.count_unshipped() == 3


async def test_claims_hand_each_unshipped_record_to_one_owner(store: Store) -> None:
    records = [audit_record(f"s{i}", timestamp=1.0) for i in range(6)]
    await store.write_audit(records)
    claims = await asyncio.gather(
        store.claim_unshipped(owner="one", stored_before=10.0, limit=4, lease_s=30.0, now=5.0),
        store.claim_unshipped(owner="two", stored_before=10.0, limit=4, lease_s=30.0, now=5.0),
    )
    ids = [r.record_id for claim in claims for r in claim]
    assert sorted(ids) == sorted(r.record_id for r in records)  # each once
    assert sorted(len(claim) for claim in claims) == [2, 4]
    # an owner takes its own claims again, never another's until they expire
    again = await store.claim_unshipped(
        owner="one", stored_before=10.0, limit=10, lease_s=30.0, now=6.0
    )
    assert {r.record_id for r in again} == {r.record_id for r in claims[0]}
    later = await store.claim_unshipped(
        owner="three", stored_before=10.0, limit=10, lease_s=30.0, now=40.0
    )
    assert len(later) == 6  # every claim expired
    await store.acknowledge_audit([records[0].record_id, "unknown"], at=41.0)
    assert await store.count_unshipped() == 5
    left = await store.claim_unshipped(
        owner="three", stored_before=10.0, limit=10, lease_s=30.0, now=42.0
    )
    assert records[0].record_id not in {r.record_id for r in left}
    assert (
        await store.claim_unshipped(owner="x", stored_before=0.5, limit=10, lease_s=1.0, now=99.0)
        == []
    )


async def test_a_decision_and_its_audit_record_commit_together(store: Store) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    await store.insert_approval(approval())
    record = audit_record(event_type="hitl_decision_made")
    won = await store.record_decision(
        "call_1",
        decision="APPROVE",
        arguments=None,
        feedback=None,
        outcome="decided",
        decided_at=2.0,
        audit=[record],
    )
    lost = await store.record_decision(
        "call_1",
        decision="REJECT",
        arguments=None,
        feedback=None,
        outcome="decided",
        decided_at=3.0,
        audit=[audit_record(event_type="hitl_decision_made")],
    )
    assert (won, lost) == (True, False)
    stored = await store.query_audit(session_id=None, event_type="hitl_decision_made", limit=10)
    assert stored == [record]  # the losing decision stored no record


async def test_a_delete_and_its_audit_record_commit_together(store: Store) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    record = audit_record(event_type="session_deleted")
    assert await store.soft_delete_session("s1", 2.0, audit=[record])
    assert not await store.soft_delete_session("s1", 3.0, audit=[audit_record()])
    assert await store.query_audit(session_id="s1", event_type=None, limit=10) == [record]


async def test_importing_an_older_trail_keeps_what_was_acknowledged(store: Store) -> None:
    shipped, waiting = audit_record("s1"), audit_record("s2")
    assert await store.import_audit([(shipped, 5.0), (waiting, None)]) == 2
    assert await store.import_audit([(shipped, 5.0)]) == 0
    assert await store.count_unshipped() == 1


async def test_the_run_lease_is_one_owners_until_it_expires(store: Store) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    assert await store.claim_session_run("s1", "a", now=1.0, until=10.0)
    assert not await store.claim_session_run("s1", "b", now=5.0, until=15.0)
    assert await store.renew_session_run("s1", "a", until=20.0)
    assert not await store.claim_session_run("s1", "b", now=15.0, until=25.0)
    assert await store.claim_session_run("s1", "b", now=21.0, until=31.0)  # expired
    assert not await store.renew_session_run("s1", "a", until=40.0)
    await store.release_session_run("s1", "a")  # not its lease: nothing happens
    assert not await store.claim_session_run("s1", "c", now=22.0, until=32.0)
    await store.release_session_run("s1", "b")
    assert await store.claim_session_run("s1", "c", now=22.0, until=32.0)


async def test_a_resume_is_claimed_once(store: Store) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    await store.insert_approval(approval())
    assert not await store.claim_resume("call_1", "early", now=1.0)  # not decided yet
    await store.record_decision(
        "call_1",
        decision="APPROVE",
        arguments=None,
        feedback=None,
        outcome="decided",
        decided_at=2.0,
    )
    claims = await asyncio.gather(
        *(store.claim_resume("call_1", f"o{i}", now=3.0) for i in range(8))
    )
    assert claims.count(True) == 1
    assert await store.list_unresumed_decisions(10.0, 10) == []


# --- migrations -------------------------------------------------------------------------

# The schema the first release wrote (version 1), as its code did: one table for the
# version, sessions, messages and approvals; its audit trail was a file of its own.
RELEASE_1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (1);
CREATE TABLE sessions (session_id TEXT PRIMARY KEY, created_at REAL NOT NULL, agent TEXT,
    deleted_at REAL);
CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (session_id), role TEXT NOT NULL,
    content TEXT, agent TEXT, created_at REAL NOT NULL, tool_calls TEXT NOT NULL DEFAULT '[]',
    tool_call_id TEXT);
CREATE INDEX messages_by_session ON messages (session_id, seq);
CREATE TABLE approvals (call_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (session_id), tool TEXT NOT NULL,
    arguments TEXT NOT NULL, agent TEXT NOT NULL, reason TEXT NOT NULL,
    timeout_s REAL NOT NULL, requested_at REAL NOT NULL, deadline REAL NOT NULL,
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, trace_flags INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'decided')),
    decision TEXT, decided_arguments TEXT, feedback TEXT, outcome TEXT, decided_at REAL);
CREATE INDEX approvals_by_status ON approvals (status, session_id, requested_at);
INSERT INTO sessions VALUES ('old', 1.0, 'coder', NULL);
INSERT INTO messages (session_id, role, content, agent, created_at)
    VALUES ('old', 'user', 'Create a sorting function', NULL, 2.0);
INSERT INTO approvals (call_id, session_id, tool, arguments, agent, reason, timeout_s,
    requested_at, deadline, trace_id, span_id, trace_flags, status, decision, outcome,
    decided_at)
    VALUES ('call_done', 'old', 'write_file', '{}', 'coder', 'writes', 300, 3.0, 303.0,
    '0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', 1, 'decided', 'APPROVE',
    'decided', 4.0);
"""


async def test_a_database_of_the_first_release_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "agent-runtime.db"
    with closing(sqlite3.connect(path)) as raw:
        raw.executescript(RELEASE_1_SCHEMA)
    async with SQLiteStore(path) as upgraded:
        assert await upgraded.schema_version() == SCHEMA_VERSION
        assert await upgraded.get_session("old") == SessionRecord("old", 1.0, "coder")
        (message,) = await upgraded.list_messages("old")
        assert (message.content, message.meta) == ("Create a sorting function", {})
        done = await upgraded.get_approval("call_done")
        assert done is not None and done.resumed_by is not None  # never resumed again
        assert await upgraded.list_unresumed_decisions(1e12, 10) == []
        await upgraded.write_audit([audit_record("old")])  # the outbox exists now
        assert await upgraded.count_unshipped() == 1


async def test_postgres_migrations_run_once_when_replicas_start_together(
    postgres_url: str,
) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        assert {await store.schema_version() for store in stores} == {SCHEMA_VERSION}
        assert all([await store.ping() for store in stores])
    finally:
        for store in stores:
            await store.close()


async def test_postgres_refuses_a_newer_schema(postgres_url: str) -> None:
    first = PostgresStore(postgres_url)
    await first.open()
    await first._write(  # the test reaching past the contract, as a newer release would
        "UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,)
    )
    await first.close()
    with pytest.raises(SchemaTooNew, match="newer"):
        await PostgresStore(postgres_url).open()


async def test_postgres_unreachable_at_start_is_unavailable_then_ready(
    postgres_server: PostgresServer,
) -> None:
    with fresh_database(postgres_server) as url:
        with unreachable(postgres_server):
            store = PostgresStore(url, connect_timeout_s=1.0)
            await store.open()  # starts anyway
            assert await store.ping() is False
            with pytest.raises(StoreUnavailable) as info:
                await store.get_session("s1")
            assert postgres_server.password not in str(info.value)
        deadline = time.monotonic() + 30
        while not await store.ping():
            assert time.monotonic() < deadline, "the store never became ready"
            await asyncio.sleep(0.1)
        assert await store.get_session("s1") is None
        await store.close()


async def test_cluster_counts_say_how_long_the_oldest_approval_waits_and_what_is_unshipped(
    store: Store,
) -> None:
    await store.insert_session(SessionRecord("s1", created_at=1.0))
    empty = await store.cluster_counts(now=500.0)
    assert (empty.oldest_pending_age_s, empty.audit_backlog) == (0.0, 0)
    await store.insert_approval(approval("call_1", requested_at=100.0))
    await store.insert_approval(approval("call_2", requested_at=300.0))
    records = [audit_record() for _ in range(3)]
    await store.write_audit(records)
    counts = await store.cluster_counts(now=500.0)
    assert counts.oldest_pending_age_s == pytest.approx(400.0)
    assert counts.audit_backlog == 3
    assert await store.record_decision(
        "call_1",
        decision="APPROVE",
        arguments=None,
        feedback=None,
        outcome="decided",
        decided_at=450.0,
    )
    await store.acknowledge_audit([records[0].record_id], at=460.0)
    counts = await store.cluster_counts(now=500.0)
    assert counts.oldest_pending_age_s == pytest.approx(200.0)  # call_2 is the oldest now
    assert counts.audit_backlog == 2


async def test_closing_sqlite_lets_a_transaction_its_caller_left_commit(
    sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Shutdown cancels the audit flusher mid-write; the write's transaction runs on (so the
    shared connection is never left inside one), and closing the store waits for it instead
    of closing the database under it."""
    record, late = audit_record(), audit_record()
    writing = asyncio.create_task(sqlite_store.write_audit([record]))
    for _ in range(1000):  # bounded: the transaction takes the store's lock as it begins
        if sqlite_store._lock.locked():
            break
        await asyncio.sleep(0)
    assert sqlite_store._lock.locked()
    writing.cancel()
    # a second write its caller leaves before it began: closing keeps it from starting
    never = asyncio.create_task(sqlite_store.write_audit([late]))
    await asyncio.sleep(0)
    never.cancel()
    with caplog.at_level(logging.ERROR, logger="agent_runtime.store.sqlite"):
        await sqlite_store.close()
        for _ in range(1000):  # bounded: let the left transactions end
            await asyncio.sleep(0)
    assert [r.getMessage() for r in caplog.records] == []
    with sqlite3.connect(sqlite_store.path) as raw:
        ids = [row[0] for row in raw.execute("SELECT record_id FROM audit_records")]
    assert ids == [record.record_id]
