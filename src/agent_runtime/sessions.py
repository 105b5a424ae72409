"""SessionManager: every session and its transcript, kept durably and announced to telemetry.

The manager is the only writer of sessions. It validates ids, stamps times with an
injectable clock (tests pass a fixed one), persists through the :class:`Store`, and emits
one typed event per change (``SessionCreated``, ``MessageAdded``, ``SessionUpdated``,
``SessionDeleted``). Whether message text leaves the process is the telemetry layer's
decision (content capture is off by default), so the event always carries it.

A session runs one agent run at a time: :meth:`SessionManager.begin_run` takes the session's
run lease in the store (a compare-and-set with an expiry, renewed while the run lasts), so
two messages for one session never interleave their transcript entries, whichever process
they reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from agent_runtime.errors import (
    InvalidSessionId,
    SessionAlreadyExists,
    SessionBusy,
    SessionNotFound,
    StoreUnavailable,
)
from agent_runtime.store import MessageRecord, MessageRole, SessionRecord, Store
from telemetry import EventSink, MessageAdded, SessionCreated, SessionDeleted, SessionUpdated

__all__ = [
    "SESSION_ID_PATTERN",
    "RunLease",
    "Session",
    "SessionManager",
    "TranscriptPage",
    "is_valid_session_id",
]

_log = logging.getLogger(__name__)

SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ROLES: frozenset[str] = frozenset(get_args(MessageRole))


def is_valid_session_id(session_id: object) -> bool:
    """Whether ``session_id`` is acceptable.

    ``.`` and ``..`` match the character class but are refused because the id also names
    the session's workspace folder, where they would mean "here" and "the parent".
    """
    return (
        isinstance(session_id, str)
        and SESSION_ID_PATTERN.fullmatch(session_id) is not None
        and session_id not in (".", "..")
    )


@dataclass(frozen=True, slots=True)
class Session:
    """A live session as callers see it: its id, when it began and its current agent."""

    session_id: str
    created_at: float
    agent: str | None = None

    @property
    def created_at_iso(self) -> str:
        """``created_at`` as UTC ISO 8601 (``2025-01-31T12:00:00.123456+00:00``)."""
        return datetime.fromtimestamp(self.created_at, tz=UTC).isoformat()

    @classmethod
    def from_record(cls, record: SessionRecord) -> Session:
        return cls(record.session_id, record.created_at, record.agent)


@dataclass(frozen=True, slots=True)
class TranscriptPage:
    """A slice of a session's transcript, and how long the whole transcript is."""

    entries: list[MessageRecord]
    offset: int
    total: int


class RunLease:
    """The session's run lease, held while one agent run lasts; renewed in the background
    at a third of its lifetime, so a process that dies loses it within ``ttl_s``.
    :meth:`release` is idempotent."""

    def __init__(self, store: Store, session_id: str, owner: str, ttl_s: float) -> None:
        self.session_id = session_id
        self.owner = owner
        self._store = store
        self._ttl_s = ttl_s
        self._renewer: asyncio.Task[None] | None = None
        self._released = False

    def start(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_s / 3)
            with contextlib.suppress(Exception):  # a missed renewal is retried next period
                await self._store.renew_session_run(
                    self.session_id, self.owner, until=time.time() + self._ttl_s
                )

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._renewer is not None:
            self._renewer.cancel()
        try:
            await self._store.release_session_run(self.session_id, self.owner)
        except StoreUnavailable:  # the run still ends (its stream says `done`)
            _log.warning(
                "the run lease of session %s lapses by itself in at most %.0f s: the store "
                "did not answer its release",
                self.session_id,
                self._ttl_s,
            )


class SessionManager:
    """Create, read, update and soft-delete sessions and append their messages.

    ``events`` must follow the telemetry ``EventSink`` contract (synchronous, never raises),
    so an event is emitted after the store write succeeded and cannot undo it.
    """

    def __init__(
        self,
        store: Store,
        events: EventSink,
        *,
        clock: Callable[[], float] = time.time,
        run_lease_s: float = 30.0,
    ) -> None:
        """``run_lease_s``: how long a run's hold on its session outlives its process."""
        self._store = store
        self._events = events
        self._clock = clock
        self._run_lease_s = run_lease_s

    async def create(
        self, session_id: str | None = None, system_prompt: str | None = None
    ) -> Session:
        """Create a session (a uuid4 hex id when none is given), optionally with a system
        prompt of its own: the transcript's first entry, which every model call of the
        session receives after the agent's own system prompt.

        Raises ``InvalidSessionId`` for a malformed id and ``SessionAlreadyExists`` when the
        id is or was in use: a deleted session's id is never handed out again.
        """
        if session_id is None:
            session_id = uuid.uuid4().hex
        elif not is_valid_session_id(session_id):
            raise InvalidSessionId()
        record = SessionRecord(session_id=session_id, created_at=self._clock(), agent=None)
        await self._store.insert_session(record)
        self._events.emit(SessionCreated(session_id=session_id))
        if system_prompt:
            await self.add_message(session_id, "system", system_prompt)
        return Session.from_record(record)

    async def get(self, session_id: str) -> Session:
        """The live session; ``SessionNotFound`` if it never existed or was deleted."""
        return Session.from_record(await self._get_record(session_id))

    async def get_or_create(self, session_id: str) -> tuple[Session, bool]:
        """The session, creating it when unknown; the flag says whether it was created.

        Safe under concurrent first messages for the same id: the loser of the insert
        race reads the winner's session. A deleted id stays deleted (``SessionNotFound``)
        rather than silently coming back to life.
        """
        if not is_valid_session_id(session_id):
            raise InvalidSessionId()
        record = await self._store.get_session(session_id)
        if record is not None:
            return Session.from_record(record), False
        try:
            return await self.create(session_id), True
        except SessionAlreadyExists:
            return await self.get(session_id), False

    async def add_message(
        self,
        session_id: str,
        role: str,
        content: str | None,
        *,
        agent: str | None = None,
        tool_calls: Iterable[Mapping[str, Any]] = (),
        tool_call_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> MessageRecord:
        """Append one transcript entry (``SessionNotFound`` if the session is gone) and
        announce it; returns it as stored (with its ``seq``).

        ``role`` is one of system, user, assistant, tool, handoff; ``tool_calls`` are
        ``{"id", "name", "arguments"}`` mappings, stored as given.
        """
        if role not in _ROLES:
            raise ValueError(f"unknown message role {role!r}; expected one of {sorted(_ROLES)}")
        record = MessageRecord(
            session_id=session_id,
            role=role,
            content=content,
            agent=agent,
            created_at=self._clock(),
            tool_calls=[dict(call) for call in tool_calls],
            tool_call_id=tool_call_id,
            meta=dict(meta or {}),
        )
        stored = await self._store.append_message(record)
        self._events.emit(MessageAdded(session_id=session_id, role=role, content=content or ""))
        return stored

    async def messages(self, session_id: str) -> list[MessageRecord]:
        """The session's whole transcript in order; ``SessionNotFound`` if it is gone."""
        await self._get_record(session_id)
        return await self._store.list_messages(session_id)

    async def transcript_page(self, session_id: str, *, offset: int, limit: int) -> TranscriptPage:
        """``limit`` entries of the transcript from ``offset`` (0 = the first entry)."""
        await self._get_record(session_id)
        entries = await self._store.list_messages(session_id, offset=offset, limit=limit)
        total = await self._store.count_messages(session_id)
        return TranscriptPage(entries, offset, total)

    async def begin_run(self, session_id: str) -> RunLease:
        """Take the session's run lease for one agent run (``SessionBusy`` while another
        run holds it, ``SessionNotFound`` if the session is gone); release it when the run
        ends, or pauses for a human without a stream to wait in."""
        await self._get_record(session_id)
        owner = uuid.uuid4().hex
        now = self._clock()
        claimed = await self._store.claim_session_run(
            session_id, owner, now=now, until=now + self._run_lease_s
        )
        if not claimed:
            raise SessionBusy.for_id(session_id)
        lease = RunLease(self._store, session_id, owner, self._run_lease_s)
        lease.start()
        return lease

    async def set_agent(self, session_id: str, agent: str | None) -> Session:
        """Make ``agent`` the session's current agent; emits only when it actually changes."""
        record = await self._get_record(session_id)
        if record.agent != agent:
            await self._store.set_session_agent(session_id, agent)
            self._events.emit(SessionUpdated(session_id=session_id, agent=agent))
        return Session(record.session_id, record.created_at, agent)

    async def delete(self, session_id: str) -> None:
        """Soft-delete: the session and its messages stay on disk but read as missing.

        Raises ``SessionNotFound`` when it is missing or already deleted, so a second
        DELETE answers 404 and only the first emits ``SessionDeleted``.
        """
        if not is_valid_session_id(session_id):
            raise SessionNotFound()
        event = SessionDeleted(session_id=session_id)
        record = self._events.audit_record(event)  # stored with the delete, in one commit
        audit = (record,) if record is not None else ()
        if not await self._store.soft_delete_session(session_id, self._clock(), audit=audit):
            raise SessionNotFound.for_id(session_id)
        self._events.emit(event, audit_record=record)

    async def _get_record(self, session_id: str) -> SessionRecord:
        if not is_valid_session_id(session_id):
            raise SessionNotFound()  # never echo a malformed id back
        record = await self._store.get_session(session_id)
        if record is None:
            raise SessionNotFound.for_id(session_id)
        return record
