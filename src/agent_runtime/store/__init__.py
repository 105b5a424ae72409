"""Durable state: sessions, messages, pending approvals, the requests served and the feedback
on them, behind one interface.

Usage::

    store = open_store(settings.database_url, settings.data_dir)
    await store.open()
    ...
    await store.close()

Configuration: ``DATABASE_URL`` unset (default) or ``sqlite:///path`` uses the embedded
SQLite file (``<AGENT_RUNTIME_DATA_DIR>/agent-runtime.db`` by default);
``postgresql://user:password@host:port/database`` the shared PostgreSQL store.
"""

from agent_runtime.store.base import DEFAULT_SQLITE_FILENAME, Store, StoreOptions, open_store
from agent_runtime.store.legacy import import_legacy_audit
from agent_runtime.store.migrations import SCHEMA_VERSION, SchemaTooNew
from agent_runtime.store.records import (
    ApprovalRecord,
    ApprovalStatus,
    FeedbackRecord,
    MessageRecord,
    MessageRole,
    RequestRecord,
    SessionRecord,
)
from agent_runtime.store.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_SQLITE_FILENAME",
    "SCHEMA_VERSION",
    "ApprovalRecord",
    "ApprovalStatus",
    "FeedbackRecord",
    "MessageRecord",
    "MessageRole",
    "RequestRecord",
    "SQLiteStore",
    "SchemaTooNew",
    "SessionRecord",
    "Store",
    "StoreOptions",
    "import_legacy_audit",
    "open_store",
]
