"""The sessions benchmark 7 runs against: coding conversations of a given length, written
through the store's public API (:meth:`SessionManager.add_message`), as the service writes
them.

A turn is five transcript entries, as the service stores one: the user's message, the
router's ``handoff`` to coder (kept, never sent to the model), coder's ``read_file`` call,
its result, and coder's answer in text. Every fourth turn's result is a 10 KB file (source
code: many short lines, quotes, so the JSON encoder escapes as it does for real files), the
others ~0.4 KB. A session of ``n`` entries is ``n / 5`` turns; of those entries ``4n / 5``
reach the model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from agent_runtime.llm.openai_compat import to_openai_messages
from agent_runtime.sessions import SessionManager
from agent_runtime.store import DEFAULT_SQLITE_FILENAME, MessageRecord, open_store
from agent_runtime.transcript import to_chat_messages
from telemetry import AuditRecord, Span, SpanRef, TelemetryEvent

ENTRIES_PER_TURN = 5
BIG_RESULT_BYTES = 10_240
BIG_EVERY = 4
"""One turn in ``BIG_EVERY`` reads a 10 KB file."""


class _NoEvents:
    """The seeding writes no telemetry: it is not part of what is measured."""

    def emit(
        self,
        event: TelemetryEvent,
        *,
        span: Span | None = None,
        origin: SpanRef | None = None,
        audit_record: AuditRecord | None = None,
        sinks: str = "all",
    ) -> None:
        return None

    def audit_record(
        self, event: TelemetryEvent, *, span: Span | None = None, origin: SpanRef | None = None
    ) -> AuditRecord | None:
        return None


def _source(turn: int, size: int) -> str:
    lines: list[str] = [f'"""Module {turn}: helpers the benchmark reads back."""', ""]
    i = 0
    while sum(len(line) + 1 for line in lines) < size:
        lines += [
            f'def helper_{turn}_{i}(value: int, name: str = "item-{i}") -> str:',
            f'    """Return {{name}} with value plus {i}, as "name=value"."""',
            f'    return f"{{name}}={{value + {i}}}"',
            "",
        ]
        i += 1
    return "\n".join(lines)[:size]


def turn_entries(turn: int) -> list[dict[str, Any]]:
    """The five ``add_message`` calls of one turn (keyword arguments)."""
    path = f"src/module_{turn}.py"
    call_id = f"call_bench_{turn:05d}"
    size = BIG_RESULT_BYTES if turn % BIG_EVERY == 0 else 400
    return [
        {"role": "user", "content": f"Please read {path} and tell me what it does."},
        {
            "role": "handoff",
            "content": "the benchmark routes to coder",
            "agent": "coder",
            "meta": {"from": "orchestrator", "to": "coder", "trigger": "orchestrator"},
        },
        {
            "role": "assistant",
            "content": None,
            "agent": "coder",
            "tool_calls": [{"id": call_id, "name": "read_file", "arguments": {"path": path}}],
        },
        {
            "role": "tool",
            "content": _source(turn, size),
            "agent": "coder",
            "tool_call_id": call_id,
            "meta": {"outcome": "completed"},
        },
        {
            "role": "assistant",
            "content": (
                f"{path} defines small helpers that format a name and a value; each "
                "returns a string such as name=value, and none of them has side effects. "
                "They are pure functions, so they are easy to test; the module has no "
                "imports and no state, and every helper is documented."
            ),
            "agent": "coder",
        },
    ]


def session_id(entries: int, index: int) -> str:
    return f"bench-t{entries}-{index}"


async def seed(data_dir: Path, sizes: dict[int, int]) -> dict[int, list[MessageRecord]]:
    """Write ``count`` sessions of ``entries`` entries for each ``entries: count`` of
    ``sizes`` into the SQLite store of ``data_dir``; return one session's transcript per
    size, as the store reads it back."""
    store = open_store(None, data_dir)
    await store.open()
    try:
        sessions = SessionManager(store, _NoEvents())
        samples: dict[int, list[MessageRecord]] = {}
        for entries, count in sizes.items():
            if entries % ENTRIES_PER_TURN:
                raise ValueError(f"a session is whole turns of {ENTRIES_PER_TURN} entries")
            for index in range(count):
                sid = session_id(entries, index)
                await sessions.create(sid)
                for turn in range(entries // ENTRIES_PER_TURN):
                    for entry in turn_entries(turn):
                        await sessions.add_message(sid, **entry)
            samples[entries] = await sessions.messages(session_id(entries, 0))
        return samples
    finally:
        await store.close()


def copy_store(seeded: Path, data_dir: Path) -> None:
    """A service's data directory starting from the seeded store (closed, so one file)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        source = seeded / f"{DEFAULT_SQLITE_FILENAME}{suffix}"
        if source.exists():
            shutil.copyfile(source, data_dir / source.name)


def wire_messages(transcript: list[MessageRecord]) -> list[Any]:
    """The transcript as a model call's ``messages`` carries it (the JSON baseline's input)."""
    return list(to_openai_messages(to_chat_messages(transcript)))
