"""agent-runtime: the service's runtime in process, through its own API (no HTTP in front).

Runs in the service's own environment (``PYTHONPATH=src:.``, the service's locked
dependencies), never in the peers' one. A run is one user message to an agent chosen
explicitly (a user switch: no routing call), the model behind the runtime's
OpenAI-compatible provider (the official ``openai`` client) pointed at the workload server.

Variants, each its own runtime (own data folder, stubbed once before the runs: nothing is
patched between runs):

- ``on``: telemetry recording with SDK providers (:func:`bench.peers.driver.recording`);
- ``off``: telemetry on the API's no-op providers (what ``OTEL_SDK_DISABLED=true`` gives):
  the layer runs, nothing is recorded; the durable transcript and audit trail are written;
- with the ``split`` option, instead: ``off``, ``unaudited`` (an off runtime built without
  an audit trail, ``Runtime.start(..., audit_trail=False)``) and ``lean`` (unaudited, and its store
  kept in memory: no durable session, transcript or approval), so ``off - lean`` is what
  only agent-runtime does of this run (the durable transcript and the audit trail) and
  ``off - unaudited`` the audit trail's share.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import _logs, metrics, trace
from pydantic import SecretStr

from agent_runtime.errors import SessionAlreadyExists, SessionNotFound
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.store import (
    ApprovalRecord,
    FeedbackRecord,
    MessageRecord,
    RequestRecord,
    SessionRecord,
    Store,
)
from agent_runtime.store.cluster import ClusterCounts
from agent_runtime.tools import Workspace
from bench.peers.driver import MESSAGE, Recording, Workload, main, recording
from bench.peers.workload import FILE_NAME, FILE_TEXT
from telemetry import AuditRecord, Providers, TelemetrySettings

AGENT = "reader"
"""The agent every run asks for, declared in :data:`AGENTS_FILE` (``Settings.agents_file``)."""
AGENTS_FILE = """\
fallback = "reader"

[agents.orchestrator]
# The router the agents file must have; no run calls it (each names its agent).
description = "Route the user's message to the agent best suited to it."

[agents.reader]
description = "Reads files and answers."
tools = ["read_file"]
"""
SPLIT_VARIANTS = ("off", "unaudited", "lean")


def _settings(data_dir: Path, workload: Workload) -> Settings:
    data_dir.mkdir(parents=True, exist_ok=True)
    agents_file = data_dir / "agents.toml"
    agents_file.write_text(AGENTS_FILE, encoding="utf-8")
    return Settings(
        data_dir=data_dir,
        llm_provider="openai",
        openai_base_url=workload.base_url,
        openai_api_key=SecretStr("x"),
        openai_model=workload.model,
        agents_file=agents_file,
    )


class MemoryStore:
    """The store's contract in memory: what the ``lean`` runtime keeps instead of its
    durable store (same records and errors, nothing written to disk)."""

    def __init__(self) -> None:
        self.sessions: dict[str, SessionRecord] = {}
        self.messages: dict[str, list[MessageRecord]] = {}
        self.leases: dict[str, tuple[str, float]] = {}
        self.approvals: dict[str, ApprovalRecord] = {}
        self.audit: dict[str, AuditRecord] = {}
        self.unshipped: set[str] = set()
        self.requests: dict[str, list[RequestRecord]] = {}
        self.feedback: list[FeedbackRecord] = []
        self.seq = 0

    def _live(self, session_id: str) -> SessionRecord:
        record = self.sessions.get(session_id)
        if record is None or record.deleted_at is not None:
            raise SessionNotFound.for_id(session_id)
        return record

    async def insert_session(self, record: SessionRecord) -> None:
        if record.session_id in self.sessions:
            raise SessionAlreadyExists.for_id(record.session_id)
        self.sessions[record.session_id] = record
        self.messages[record.session_id] = []

    async def get_session(self, session_id: str) -> SessionRecord | None:
        record = self.sessions.get(session_id)
        return record if record is not None and record.deleted_at is None else None

    async def set_session_agent(self, session_id: str, agent: str | None) -> None:
        self.sessions[session_id] = dataclasses.replace(self._live(session_id), agent=agent)

    async def soft_delete_session(
        self, session_id: str, deleted_at: float, *, audit: Sequence[AuditRecord] = ()
    ) -> bool:
        record = await self.get_session(session_id)
        if record is None:
            return False
        self.sessions[session_id] = dataclasses.replace(record, deleted_at=deleted_at)
        await self.write_audit(audit)
        return True

    async def append_message(self, record: MessageRecord) -> MessageRecord:
        self._live(record.session_id)
        self.seq += 1
        stored = dataclasses.replace(record, seq=self.seq)
        self.messages[record.session_id].append(stored)
        return stored

    async def list_messages(
        self, session_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[MessageRecord]:
        messages = self.messages.get(session_id, [])
        return messages[offset : None if limit is None else offset + limit]

    async def count_messages(self, session_id: str) -> int:
        return len(self.messages.get(session_id, ()))

    async def claim_session_run(
        self, session_id: str, owner: str, *, now: float, until: float
    ) -> bool:
        if await self.get_session(session_id) is None:
            return False
        holder, expiry = self.leases.get(session_id, (owner, now))
        if holder != owner and expiry > now:
            return False
        self.leases[session_id] = (owner, until)
        return True

    async def renew_session_run(self, session_id: str, owner: str, *, until: float) -> bool:
        if self.leases.get(session_id, ("", 0.0))[0] != owner:
            return False
        self.leases[session_id] = (owner, until)
        return True

    async def release_session_run(self, session_id: str, owner: str) -> None:
        if self.leases.get(session_id, ("", 0.0))[0] == owner:
            del self.leases[session_id]

    async def run_lease_alive(self, session_id: str, *, now: float) -> bool:
        return self.leases.get(session_id, ("", 0.0))[1] >= now

    async def cluster_counts(self, *, now: float) -> ClusterCounts:
        live = [s for s in self.sessions.values() if s.deleted_at is None]
        running = sum(1 for s in live if self.leases.get(s.session_id, ("", 0.0))[1] >= now)
        pending = sum(1 for a in self.approvals.values() if a.status == "pending")
        return ClusterCounts(len(live), running, pending)

    async def insert_approval(self, record: ApprovalRecord) -> None:
        self._live(record.session_id)
        self.approvals[record.call_id] = record

    async def get_approval(self, call_id: str) -> ApprovalRecord | None:
        return self.approvals.get(call_id)

    async def list_pending_approvals(self, session_id: str | None) -> list[ApprovalRecord]:
        return [
            a
            for a in self.approvals.values()
            if a.status == "pending" and session_id in (None, a.session_id)
        ]

    async def list_expired_approvals(self, now: float, limit: int) -> list[ApprovalRecord]:
        expired = [a for a in self.approvals.values() if a.status == "pending" and a.deadline < now]
        return sorted(expired, key=lambda a: a.deadline)[:limit]

    async def list_unresumed_decisions(
        self, decided_before: float, limit: int
    ) -> list[ApprovalRecord]:
        return [
            a
            for a in self.approvals.values()
            if a.status == "decided"
            and a.resumed_by is None
            and (a.decided_at or 0.0) < decided_before
        ][:limit]

    async def record_decision(
        self,
        call_id: str,
        *,
        decision: str,
        arguments: dict[str, Any] | None,
        feedback: str | None,
        outcome: str | None,
        decided_at: float,
        decided_by: str | None = None,
        audit: Sequence[AuditRecord] = (),
        decided_in: str | None = None,
    ) -> bool:
        record = self.approvals.get(call_id)
        if record is None or record.status != "pending":
            return False
        self.approvals[call_id] = dataclasses.replace(
            record,
            status="decided",
            decision=decision,
            decided_arguments=arguments,
            feedback=feedback,
            outcome=outcome,
            decided_at=decided_at,
            decided_by=decided_by,
            decided_in=decided_in,
        )
        await self.write_audit(audit)
        return True

    async def claim_resume(self, call_id: str, owner: str, *, now: float) -> bool:
        record = self.approvals.get(call_id)
        if record is None or record.status != "decided" or record.resumed_by is not None:
            return False
        self.approvals[call_id] = dataclasses.replace(record, resumed_by=owner)
        return True

    # the audit outbox (one process: claims need no lease)
    async def write_audit(self, records: Sequence[AuditRecord]) -> None:
        for record in records:
            if record.record_id not in self.audit:
                self.audit[record.record_id] = record
                self.unshipped.add(record.record_id)

    async def import_audit(self, records: Sequence[tuple[AuditRecord, float | None]]) -> int:
        new = [record for record, _ in records if record.record_id not in self.audit]
        await self.write_audit(new)
        return len(new)

    async def claim_unshipped(
        self, *, owner: str, stored_before: float, limit: int, lease_s: float, now: float
    ) -> list[AuditRecord]:
        return [r for r in self.audit.values() if r.record_id in self.unshipped][:limit]

    async def acknowledge_audit(self, record_ids: Sequence[str], *, at: float) -> None:
        self.unshipped.difference_update(record_ids)

    async def query_audit(
        self, *, session_id: str | None, event_type: str | None, limit: int
    ) -> list[AuditRecord]:
        return self.query_audit_blocking(session_id=session_id, event_type=event_type, limit=limit)

    def query_audit_blocking(
        self, *, session_id: str | None, event_type: str | None, limit: int
    ) -> list[AuditRecord]:
        matching = [
            r
            for r in self.audit.values()
            if session_id in (None, r.session_id) and event_type in (None, r.event_type)
        ]
        return matching[-limit:] if limit > 0 else []

    async def count_unshipped(self) -> int:
        return len(self.unshipped)

    async def record_request(self, record: RequestRecord) -> None:
        if await self.get_session(record.session_id) is None:
            return
        served = self.requests.setdefault(record.trace_id, [])
        if all(known.span_id != record.span_id for known in served):
            served.append(record)

    async def get_request(self, trace_id: str) -> RequestRecord | None:
        served = [
            record
            for record in self.requests.get(trace_id, [])
            if await self.get_session(record.session_id) is not None
        ]
        return max(served, key=lambda record: record.ended_at) if served else None

    async def insert_feedback(
        self, record: FeedbackRecord, *, audit: Sequence[AuditRecord] = ()
    ) -> None:
        self._live(record.session_id)
        self.feedback.append(record)
        await self.write_audit(audit)

    async def list_feedback(self, session_id: str, *, limit: int = 1000) -> list[FeedbackRecord]:
        mine = [record for record in self.feedback if record.session_id == session_id]
        return mine[-limit:] if limit > 0 else []


def keep_in_memory(store: Store) -> None:
    """Replace every data method of ``store`` (this instance only, for good) by
    :class:`MemoryStore`'s. A method the store contract gains must be added there first:
    one left on disk would split the state between the two."""
    memory = MemoryStore()
    for name, member in vars(Store).items():
        if name.startswith("_") or name in ("open", "close", "ping") or not callable(member):
            continue
        if not hasattr(memory, name):
            raise RuntimeError(f"the store contract has {name!r}: give MemoryStore one")
        setattr(store, name, getattr(memory, name))


class RuntimeSubject:
    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.variants: tuple[str, ...] = (
            SPLIT_VARIANTS if workload.options == ("split",) else ("on", "off")
        )
        self.data_dir = Path(tempfile.mkdtemp(prefix="bench-peers-runtime-"))
        self.recording: Recording | None = recording() if "on" in self.variants else None
        self.runtimes: dict[str, Runtime] = {}

    async def start(self) -> RuntimeSubject:
        noop = Providers(
            trace.NoOpTracerProvider(),
            metrics.NoOpMeterProvider(),
            _logs.NoOpLoggerProvider(),
            False,
        )
        for variant in self.variants:
            providers = noop
            if variant == "on" and self.recording is not None:
                r = self.recording
                providers = Providers(r.tracer_provider, r.meter_provider, r.logger_provider, False)
            self.runtimes[variant] = await Runtime.start(
                _settings(self.data_dir / variant, self.workload),
                telemetry_settings=TelemetrySettings(capture_content=False),
                telemetry_providers=providers,
                audit_trail=variant not in ("unaudited", "lean"),
            )
        if "lean" in self.runtimes:
            keep_in_memory(self.runtimes["lean"].store)
        return self

    def prepare(self, variant: str, index: int) -> None:
        """The file the tool reads, in the new session's workspace (before the clock starts)."""
        root = Workspace.for_session(self.data_dir / variant, self._session(variant, index)).root
        (root / FILE_NAME).write_text(FILE_TEXT, encoding="utf-8")

    @staticmethod
    def _session(variant: str, index: int) -> str:
        return f"{variant}-{index}"

    async def run(self, variant: str, index: int) -> None:
        runtime = self.runtimes[variant]
        outcome = None
        async for event in runtime.orchestrator.handle(
            self._session(variant, index), MESSAGE, agent=AGENT
        ):
            if event.event == "done":
                outcome = event.data["outcome"]
        if outcome != "completed":
            raise RuntimeError(f"{variant} run {index} ended {outcome!r}")

    async def counts(self) -> dict[str, Any]:
        for runtime in self.runtimes.values():
            await runtime.telemetry.flush()  # the audit trail's queued log records
        if self.recording is None:
            return {"spans": 0, "names": {}, "histogram_points": 0, "logs": 0}
        return self.recording.counts()

    async def aclose(self) -> None:
        for runtime in self.runtimes.values():
            await runtime.close()
        if self.recording is not None:
            self.recording.shutdown()
        shutil.rmtree(self.data_dir, ignore_errors=True)


async def build(workload: Workload) -> RuntimeSubject:
    return await RuntimeSubject(workload).start()


def ready() -> dict[str, Any]:
    from bench.peers.driver import versions

    return {"agent": AGENT, "versions": versions("agent-runtime")}


if __name__ == "__main__":
    main(build, ready)
