"""SessionManager: ids, lifecycle, messages, and the events each change emits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.errors import InvalidSessionId, SessionAlreadyExists, SessionNotFound
from agent_runtime.sessions import Session, SessionManager, is_valid_session_id
from agent_runtime.store import SQLiteStore
from telemetry import (
    AuditRecord,
    MessageAdded,
    SessionCreated,
    SessionDeleted,
    SessionUpdated,
    SpanRef,
    TelemetryEvent,
)

NOW = 1_700_000_000.25


class RecordingSink:
    """A fake EventSink that keeps every event, in order, and the audit records it was
    asked for (the manager stores those with their change)."""

    def __init__(self) -> None:
        self.events: list[TelemetryEvent] = []
        self.records: list[AuditRecord] = []

    def emit(
        self, event: TelemetryEvent, *, audit_record: AuditRecord | None = None, **_: object
    ) -> None:
        self.events.append(event)

    def audit_record(self, event: TelemetryEvent, **_: object) -> AuditRecord | None:
        if not event.audited:
            return None
        record = AuditRecord.new(event, {}, SpanRef("0" * 31 + "1", "0" * 15 + "1"))
        self.records.append(record)
        return record


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "sessions.db") as opened:
        yield opened


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def manager(store: SQLiteStore, sink: RecordingSink) -> SessionManager:
    return SessionManager(store, sink, clock=lambda: NOW)


async def test_create_with_given_id_emits_session_created(
    manager: SessionManager, sink: RecordingSink
) -> None:
    session = await manager.create("proj-1:chat_2.a")
    assert session == Session("proj-1:chat_2.a", NOW, None)
    assert sink.events == [SessionCreated(session_id="proj-1:chat_2.a")]
    assert await manager.get("proj-1:chat_2.a") == session


async def test_create_without_id_uses_uuid4_hex(manager: SessionManager) -> None:
    session = await manager.create()
    assert len(session.session_id) == 32
    int(session.session_id, 16)


def test_created_at_iso_is_utc_iso8601() -> None:
    assert Session("s", 0.5, None).created_at_iso == "1970-01-01T00:00:00.500000+00:00"


@pytest.mark.parametrize(
    "bad", ["", ".", "..", "a/b", "../etc", "a b", "x" * 129, "naïve", "a\0b", "a\\b"]
)
async def test_create_refuses_invalid_ids_without_echoing_them(
    manager: SessionManager, sink: RecordingSink, bad: str
) -> None:
    with pytest.raises(InvalidSessionId) as info:
        await manager.create(bad)
    assert info.value.status == 422
    assert info.value.code == "invalid_session_id"
    if len(bad) > 2:  # the fixed message itself mentions '.' and '..'
        assert bad not in info.value.message
    assert sink.events == []


def test_valid_ids() -> None:
    assert is_valid_session_id("x" * 128)
    assert is_valid_session_id("...")
    assert not is_valid_session_id(None)


async def test_create_existing_id_raises_already_exists(manager: SessionManager) -> None:
    await manager.create("s1")
    with pytest.raises(SessionAlreadyExists) as info:
        await manager.create("s1")
    assert info.value.status == 409


async def test_get_missing_raises_not_found(manager: SessionManager) -> None:
    with pytest.raises(SessionNotFound) as info:
        await manager.get("missing")
    assert (info.value.status, info.value.code) == (404, "session_not_found")
    with pytest.raises(SessionNotFound):
        await manager.get("../bad")


async def test_get_or_create_creates_once(manager: SessionManager, sink: RecordingSink) -> None:
    first, created = await manager.get_or_create("s1")
    again, created_again = await manager.get_or_create("s1")
    assert (created, created_again) == (True, False)
    assert first == again
    assert sink.events == [SessionCreated(session_id="s1")]


async def test_get_or_create_concurrently_creates_exactly_once(
    manager: SessionManager, sink: RecordingSink
) -> None:
    results = await asyncio.gather(*(manager.get_or_create("race") for _ in range(10)))
    assert [created for _, created in results].count(True) == 1
    assert sink.events == [SessionCreated(session_id="race")]


async def test_get_or_create_does_not_revive_a_deleted_session(manager: SessionManager) -> None:
    await manager.create("s1")
    await manager.delete("s1")
    with pytest.raises(SessionNotFound):
        await manager.get_or_create("s1")
    with pytest.raises(InvalidSessionId):
        await manager.get_or_create("..")


async def test_add_message_stores_in_order_and_emits_message_added(
    manager: SessionManager, sink: RecordingSink
) -> None:
    await manager.create("s1")
    calls = [{"id": "c1", "name": "write_file", "arguments": {"path": "a.py", "content": "x"}}]
    await manager.add_message("s1", "user", "write a.py")
    await manager.add_message("s1", "assistant", None, agent="coder", tool_calls=calls)
    await manager.add_message("s1", "tool", "wrote 1 bytes", agent="coder", tool_call_id="c1")

    messages = await manager.messages("s1")
    assert [(m.role, m.content, m.agent) for m in messages] == [
        ("user", "write a.py", None),
        ("assistant", None, "coder"),
        ("tool", "wrote 1 bytes", "coder"),
    ]
    assert messages[1].tool_calls == calls
    assert messages[2].tool_call_id == "c1"
    assert all(m.created_at == NOW for m in messages)
    assert sink.events[1:] == [
        MessageAdded(session_id="s1", role="user", content="write a.py"),
        MessageAdded(session_id="s1", role="assistant", content=""),
        MessageAdded(session_id="s1", role="tool", content="wrote 1 bytes"),
    ]


async def test_add_message_to_missing_session_raises_and_emits_nothing(
    manager: SessionManager, sink: RecordingSink
) -> None:
    with pytest.raises(SessionNotFound):
        await manager.add_message("ghost", "user", "hi")
    with pytest.raises(SessionNotFound):
        await manager.messages("ghost")
    assert sink.events == []


async def test_add_message_refuses_unknown_role(manager: SessionManager) -> None:
    await manager.create("s1")
    with pytest.raises(ValueError, match="role"):
        await manager.add_message("s1", "wizard", "hi")


async def test_set_agent_emits_only_on_change(manager: SessionManager, sink: RecordingSink) -> None:
    await manager.create("s1")
    updated = await manager.set_agent("s1", "coder")
    await manager.set_agent("s1", "coder")
    await manager.set_agent("s1", "debug")
    assert updated.agent == "coder"
    assert (await manager.get("s1")).agent == "debug"
    assert sink.events[1:] == [
        SessionUpdated(session_id="s1", agent="coder"),
        SessionUpdated(session_id="s1", agent="debug"),
    ]
    with pytest.raises(SessionNotFound):
        await manager.set_agent("ghost", "coder")


async def test_delete_is_soft_then_not_found(
    manager: SessionManager, sink: RecordingSink, store: SQLiteStore
) -> None:
    await manager.create("s1")
    await manager.add_message("s1", "user", "hi")
    await manager.delete("s1")
    assert sink.events[-1] == SessionDeleted(session_id="s1")
    with pytest.raises(SessionNotFound):
        await manager.get("s1")
    with pytest.raises(SessionNotFound):
        await manager.delete("s1")
    with pytest.raises(SessionNotFound):
        await manager.add_message("s1", "user", "again")
    # Soft: the rows are still on disk.
    assert [m.content for m in await store.list_messages("s1")] == ["hi"]
    assert [type(e) for e in sink.events].count(SessionDeleted) == 1
    # The delete's audit record was stored with it, in the same commit; the second,
    # refused delete stored nothing.
    stored = await store.query_audit(session_id="s1", event_type="session_deleted", limit=10)
    assert stored == sink.records[:1]


async def test_delete_invalid_id_is_not_found(manager: SessionManager) -> None:
    with pytest.raises(SessionNotFound) as info:
        await manager.delete("../../x")
    assert "../../x" not in info.value.message
