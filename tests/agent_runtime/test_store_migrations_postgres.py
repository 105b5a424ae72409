"""PostgreSQL databases written by every earlier release upgrade in place.

A database left at version ``n`` (the migrations up to ``n`` applied, as that release's
code applied them, with a session, a message and a decided approval in it) is opened by
this release: it is migrated to :data:`SCHEMA_VERSION` in place, what it held is still
there, and what the newer versions added works on it.
"""

from __future__ import annotations

import psycopg
import pytest

from agent_runtime.store import SCHEMA_VERSION, MessageRecord, SessionRecord
from agent_runtime.store.migrations import MIGRATIONS
from agent_runtime.store.postgres import PostgresStore
from tests.agent_runtime.test_store import audit_record

_OLD_ROWS = """
INSERT INTO sessions (session_id, created_at, agent, deleted_at)
    VALUES ('old', 1.0, 'coder', NULL);
INSERT INTO messages (session_id, role, content, agent, created_at)
    VALUES ('old', 'user', 'Create a sorting function', NULL, 2.0);
INSERT INTO approvals (call_id, session_id, tool, arguments, agent, reason, timeout_s,
    requested_at, deadline, trace_id, span_id, trace_flags, status, decision, outcome,
    decided_at)
    VALUES ('call_done', 'old', 'write_file', '{}', 'coder', 'writes', 300, 3.0, 303.0,
    '0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', 1, 'decided', 'APPROVE',
    'decided', 4.0);
"""


def _leave_at(url: str, version: int) -> None:
    """The database as the release of schema ``version`` left it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for migration in MIGRATIONS[:version]:
            conn.execute(migration.postgres.encode())
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        conn.execute(_OLD_ROWS.encode())


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
async def test_a_database_of_an_earlier_release_upgrades_in_place(
    postgres_url: str, version: int
) -> None:
    _leave_at(postgres_url, version)
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        assert await store.get_session("old") == SessionRecord("old", 1.0, "coder")
        (message,) = await store.list_messages("old")
        assert (message.content, message.meta) == ("Create a sorting function", {})
        done = await store.get_approval("call_done")
        assert done is not None and done.decision == "APPROVE"
        await store.write_audit([audit_record("old")])  # the outbox exists now
        assert await store.count_unshipped() == 1
        added = await store.append_message(
            MessageRecord(
                session_id="old", role="assistant", content="done", agent="coder", created_at=5.0
            )
        )
        assert added.seq > message.seq
    finally:
        await store.close()
