"""How a waiting stream learns that its approval was decided, wherever the decision arrived.

Replicas: a decision may arrive on another replica than the stream's. The waiter registers
for its call's wake-ups (:mod:`agent_runtime.store.signals`), then reads the row, and reads
it again at every wake-up or poll interval: the row is the truth, a wake-up only says "read
it now". A decision made in this process needs no read: it completes the waiter's future.
This module changes when that protocol does (what is read, when, what counts as decided);
what the stream does with the decision stays in :mod:`agent_runtime.hitl`.
"""

from __future__ import annotations

from agent_runtime.errors import StoreUnavailable
from agent_runtime.hitl_values import Waiter
from agent_runtime.store import ApprovalRecord, Store
from agent_runtime.store.signals import Watch
from telemetry import suppress_client_spans

__all__ = ["until_decided"]


async def until_decided(
    store: Store, call_id: str, waiter: Waiter, watch: Watch, *, poll_s: float
) -> ApprovalRecord | None:
    """The row once another process decided it; None once this process's future is done.
    Re-read at every wake-up and at least every ``poll_s``; a store that does not answer is
    asked again at the next one. Not while this process records a decision of its own
    (``waiter.deciding``): its future is about to say."""
    while True:
        if waiter.future.done():
            return None
        watch.clear()
        if not waiter.deciding:
            try:
                with suppress_client_spans():  # a poll, not the request's work
                    row = await store.get_approval(call_id)
            except StoreUnavailable:  # the next interval reads it again
                row = None
            decided = row is not None and row.status == "decided"
            if decided and not waiter.deciding and not waiter.future.done():
                return row
        await watch.wait(waiter.future, poll_s)
