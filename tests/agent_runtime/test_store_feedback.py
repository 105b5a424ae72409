"""The store's requests served and feedback on them (schema version 4), on both backends:
a request is kept once per span, read back by its trace (the latest of several), gone with its
session; feedback commits with its audit record or not at all, and reads back per session."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from agent_runtime.errors import SessionNotFound
from agent_runtime.store import (
    SCHEMA_VERSION,
    FeedbackRecord,
    RequestRecord,
    SessionRecord,
    SQLiteStore,
    Store,
    open_store,
)
from agent_runtime.store.migrations import MIGRATIONS
from telemetry import AuditRecord

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
async def store(database_url: str | None, tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(database_url, tmp_path / "db")
    await opened.open()
    try:
        await opened.insert_session(SessionRecord("s1", 1.0, None))
        yield opened
    finally:
        await opened.close()


def served(
    span_id: str = "b7ad6b7169203331", *, ended_at: float = 10.0, **kw: object
) -> RequestRecord:
    fields: dict[str, object] = {
        "trace_id": TRACE,
        "span_id": span_id,
        "trace_flags": 1,
        "session_id": "s1",
        "agent": "coder",
        "outcome": "completed",
        "ended_at": ended_at,
    }
    fields.update(kw)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def rating(score: float = 1.0, session_id: str = "s1", **kw: object) -> FeedbackRecord:
    fields: dict[str, object] = {
        "feedback_id": uuid.uuid4().hex,
        "trace_id": TRACE,
        "span_id": "b7ad6b7169203331",
        "session_id": session_id,
        "agent": "coder",
        "name": "user_feedback",
        "score": score,
        "label": "up",
        "comment": "nice",
        "created_at": 20.0,
    }
    fields.update(kw)
    return FeedbackRecord(**fields)  # type: ignore[arg-type]


def audit_of(record: FeedbackRecord) -> AuditRecord:
    return AuditRecord(
        record_id=uuid.uuid4().hex,
        timestamp=time.time(),
        event_type="user_feedback",
        session_id=record.session_id,
        trace_id=record.trace_id,
        span_id=record.span_id,
        attributes={"gen_ai.evaluation.score.value": record.score},
        summary="user_feedback: score=1",
        otel_name="gen_ai.evaluation.result",
        details={"feedback_id": record.feedback_id},
    )


async def test_a_served_request_is_read_back_by_its_trace(store: Store) -> None:
    assert await store.get_request(TRACE) is None
    await store.record_request(served())
    await store.record_request(served(agent="ask"))  # the same span again: kept once
    assert await store.get_request(TRACE) == served()
    assert await store.get_request("f" * 32) is None


async def test_several_requests_in_one_trace_read_as_the_latest(store: Store) -> None:
    await store.record_request(served("1111111111111111", ended_at=10.0, agent="debug"))
    await store.record_request(served("2222222222222222", ended_at=30.0, agent="coder"))
    await store.record_request(served("3333333333333333", ended_at=20.0, agent="ask"))
    latest = await store.get_request(TRACE)
    assert latest is not None and (latest.span_id, latest.agent) == ("2222222222222222", "coder")


async def test_requests_of_a_missing_or_deleted_session_are_not_kept(store: Store) -> None:
    await store.record_request(served(session_id="nobody"))
    assert await store.get_request(TRACE) is None
    await store.record_request(served())
    await store.soft_delete_session("s1", 2.0)
    assert await store.get_request(TRACE) is None


async def test_feedback_and_its_audit_record_commit_together(store: Store) -> None:
    first, second = rating(1.0), rating(0.0, label=None, comment=None)
    await store.insert_feedback(first, audit=[audit_of(first)])
    await store.insert_feedback(second)
    assert await store.list_feedback("s1") == [first, second]
    assert await store.list_feedback("s1", limit=1) == [second]  # the newest, oldest first
    audited = await store.query_audit(session_id="s1", event_type="user_feedback", limit=10)
    assert [r.details for r in audited] == [{"feedback_id": first.feedback_id}]


async def test_feedback_for_a_deleted_session_stores_nothing(store: Store) -> None:
    await store.soft_delete_session("s1", 2.0)
    record = rating()
    with pytest.raises(SessionNotFound):
        await store.insert_feedback(record, audit=[audit_of(record)])
    assert await store.list_feedback("s1") == []
    assert await store.query_audit(session_id="s1", event_type="user_feedback", limit=10) == []


async def test_the_schema_refuses_a_score_outside_zero_and_one(store: Store) -> None:
    with pytest.raises(Exception, match=r"(?i)check"):
        await store.insert_feedback(rating(1.5))
    assert await store.list_feedback("s1") == []


async def test_a_version_3_database_upgrades_to_feedback(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for migration in MIGRATIONS[:3]:
            raw.executescript(migration.sqlite)
        raw.execute("INSERT INTO schema_version (version) VALUES (3)")
        raw.execute("INSERT INTO sessions (session_id, created_at) VALUES ('s1', 1.0)")
        raw.commit()
    async with SQLiteStore(path) as upgraded:
        assert await upgraded.schema_version() == SCHEMA_VERSION >= 4
        await upgraded.record_request(served())
        await upgraded.insert_feedback(rating())
        assert len(await upgraded.list_feedback("s1")) == 1
