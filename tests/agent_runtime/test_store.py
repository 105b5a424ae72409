"""The SQLite store: session lifecycle, message order, approval CAS, restart survival."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from agent_runtime.errors import SessionAlreadyExists, SessionNotFound
from agent_runtime.store import (
    SCHEMA_VERSION,
    ApprovalRecord,
    MessageRecord,
    SessionRecord,
    SQLiteStore,
    Store,
    open_store,
)
from agent_runtime.store.postgres import PostgresStore, redacted_url


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
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


async def test_sqlite_store_satisfies_the_store_protocol(store: SQLiteStore) -> None:
    assert isinstance(store, Store)


async def test_open_sets_wal_foreign_keys_and_schema_version(store: SQLiteStore) -> None:
    assert await store.ping() is True
    assert await store.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_ping_is_false_when_closed(tmp_path: Path) -> None:
    closed = SQLiteStore(tmp_path / "x.db")
    assert await closed.ping() is False
    with pytest.raises(RuntimeError, match="not open"):
        await closed.get_session("s1")


async def test_session_lifecycle_with_soft_delete(store: SQLiteStore) -> None:
    await store.insert_session(SessionRecord("s1", created_at=10.0, agent=None))
    assert await store.get_session("s1") == SessionRecord("s1", 10.0, None)

    await store.set_session_agent("s1", "coder")
    assert (await store.get_session("s1")) == SessionRecord("s1", 10.0, "coder")

    assert await store.soft_delete_session("s1", deleted_at=20.0) is True
    assert await store.get_session("s1") is None
    assert await store.soft_delete_session("s1", deleted_at=30.0) is False
    with pytest.raises(SessionNotFound):
        await store.set_session_agent("s1", "ask")


async def test_insert_session_refuses_existing_and_deleted_ids(store: SQLiteStore) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    with pytest.raises(SessionAlreadyExists):
        await store.insert_session(SessionRecord("s1", 2.0, None))
    await store.soft_delete_session("s1", 3.0)
    with pytest.raises(SessionAlreadyExists):
        await store.insert_session(SessionRecord("s1", 4.0, None))


async def test_missing_session_reads_as_none(store: SQLiteStore) -> None:
    assert await store.get_session("nope") is None
    assert await store.soft_delete_session("nope", 1.0) is False


async def test_messages_keep_append_order_and_tool_calls(store: SQLiteStore) -> None:
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


async def test_concurrent_appends_are_all_kept(store: SQLiteStore) -> None:
    await store.insert_session(SessionRecord("s1", 1.0, None))
    await asyncio.gather(
        *(store.append_message(MessageRecord("s1", "user", str(i), None, 1.0)) for i in range(50))
    )
    contents = [m.content for m in await store.list_messages("s1")]
    assert sorted(contents, key=lambda c: int(c or 0)) == [str(i) for i in range(50)]


async def test_append_message_to_missing_or_deleted_session_raises(store: SQLiteStore) -> None:
    with pytest.raises(SessionNotFound):
        await store.append_message(MessageRecord("ghost", "user", "hi", None, 1.0))
    await store.insert_session(SessionRecord("s1", 1.0, None))
    await store.soft_delete_session("s1", 2.0)
    with pytest.raises(SessionNotFound):
        await store.append_message(MessageRecord("s1", "user", "hi", None, 3.0))


async def test_approval_round_trip_and_pending_listing(store: SQLiteStore) -> None:
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


async def test_insert_approval_checks_session_and_duplicate_ids(store: SQLiteStore) -> None:
    with pytest.raises(SessionNotFound):
        await store.insert_approval(approval(session_id="ghost"))
    await store.insert_session(SessionRecord("s1", 1.0, None))
    await store.insert_approval(approval())
    with pytest.raises(ValueError, match="already exists"):
        await store.insert_approval(approval())


async def test_concurrent_decisions_exactly_one_wins(store: SQLiteStore) -> None:
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


async def test_decision_on_unknown_approval_returns_false(store: SQLiteStore) -> None:
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
