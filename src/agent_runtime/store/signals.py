"""Decision signals: how a waiting stream hears that its approval was decided, on whichever
replica the decision arrived.

A signal is only a wake-up: the approval's row is the truth. A waiter registers
(:meth:`DecisionSignals.watch`) *before* it reads the row, then waits for a wake-up or a
bounded poll interval, whichever comes first, and reads the row again; so a signal lost on
the way delays a decision by at most one interval, never loses it.

- :class:`LocalSignals`: one process (the embedded SQLite store): decisions made in this
  process wake its waiters directly.
- :class:`PostgresSignals`: the shared store. The deciding replica's transaction ends with
  ``pg_notify(channel, call_id)`` (delivered on commit only; lost while a listener is
  disconnected). Each replica keeps one dedicated ``LISTEN`` connection outside the pool,
  reconnects with back-off, and after every (re)connect wakes all its waiters, who re-read
  their rows: what was decided while it was away is found then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

import psycopg

from agent_runtime.store.cluster import DECISION_CHANNEL

__all__ = ["DecisionSignals", "LocalSignals", "PostgresSignals", "Watch"]

_log = logging.getLogger(__name__)
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
LISTENER_APPLICATION_NAME = "agent-runtime-decision-listener"
"""The listening connection's ``application_name`` (how an operator, or a test, finds it)."""


class Watch:
    """One waiter's registration for one call id: set by every wake-up for it."""

    def __init__(self, owner: LocalSignals, call_id: str) -> None:
        self.call_id = call_id
        self._owner = owner
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        """Forget the wake-ups so far: call it before reading the row, never after."""
        self._event.clear()

    async def wait(self, also: asyncio.Future[Any], timeout_s: float) -> None:
        """Until a wake-up, ``also`` is done, or ``timeout_s`` passed (never raises for
        these; ``also`` is not cancelled)."""
        if self._event.is_set() or also.done():
            return
        woken = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({woken, also}, timeout=timeout_s, return_when="FIRST_COMPLETED")
        finally:
            woken.cancel()

    def close(self) -> None:
        self._owner.forget(self)


class DecisionSignals(Protocol):
    """Wake-ups for the waiters of one process; see the module docstring."""

    connected: bool
    """Whether wake-ups from other processes can arrive now (always, for one process)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def watch(self, call_id: str) -> Watch: ...

    def wake(self, call_id: str) -> None: ...


class LocalSignals:
    """Wake-ups within one process (the embedded store has no other replica)."""

    def __init__(self) -> None:
        self._watches: dict[str, set[Watch]] = {}
        self.connected = True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.wake_all()

    def watch(self, call_id: str) -> Watch:
        watch = Watch(self, call_id)
        self._watches.setdefault(call_id, set()).add(watch)
        return watch

    def forget(self, watch: Watch) -> None:
        watches = self._watches.get(watch.call_id)
        if watches is not None:
            watches.discard(watch)
            if not watches:
                del self._watches[watch.call_id]

    def wake(self, call_id: str) -> None:
        for watch in list(self._watches.get(call_id, ())):
            watch.set()

    def wake_all(self) -> None:
        """Every waiter re-reads its row (after a reconnect: what was missed is found)."""
        for watches in list(self._watches.values()):
            for watch in list(watches):
                watch.set()

    @property
    def watched(self) -> int:
        return sum(len(w) for w in self._watches.values())


class PostgresSignals(LocalSignals):
    """``LISTEN`` on :data:`DECISION_CHANNEL` over one connection of its own, kept open."""

    def __init__(self, url: str, *, connect_timeout_s: float = 3.0) -> None:
        super().__init__()
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.connects = 0
        """How many times the listener (re)connected."""

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.connected = False
        await super().close()

    async def _listen_forever(self) -> None:
        attempt = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=max(1, int(self._connect_timeout_s)),
                    application_name=LISTENER_APPLICATION_NAME,
                )
            except (psycopg.Error, OSError) as exc:
                await self._back_off(attempt, exc)
                attempt += 1
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {DECISION_CHANNEL}")
                    self.connected, attempt = True, 0
                    self.connects += 1
                    self.wake_all()  # what was decided while we were not listening
                    async for notify in conn.notifies():
                        self.wake(notify.payload)
            except (psycopg.Error, OSError) as exc:
                self.connected = False
                await self._back_off(attempt, exc)
                attempt += 1
            finally:
                self.connected = False

    @staticmethod
    async def _back_off(attempt: int, exc: BaseException) -> None:
        delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
        if attempt == 0:
            _log.warning(
                "decision listener disconnected (%s); reconnecting (decisions are polled "
                "meanwhile)",
                type(exc).__name__,
            )
        await asyncio.sleep(delay)
