"""The running service's parts, wired once: what the api layer calls into.

Built at start-up from :class:`Settings`; closed at shutdown. Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.agents import load_agents
from agent_runtime.cluster_gauges import ClusterRefresher
from agent_runtime.errors import StoreUnavailable
from agent_runtime.feedback import FeedbackService
from agent_runtime.hitl import Decision, HITLManager, Resolution
from agent_runtime.llm import ChatModel, create_model
from agent_runtime.llm.stream import LLMStreamService
from agent_runtime.orchestrator import MultiAgentOrchestrator, Run
from agent_runtime.sessions import SessionManager
from agent_runtime.settings import Settings
from agent_runtime.store import Store, StoreOptions, import_legacy_audit, open_store
from agent_runtime.store.signals import DecisionSignals, LocalSignals, PostgresSignals
from agent_runtime.stream_events import StreamEvent
from agent_runtime.toolrunner import ToolRunner
from agent_runtime.tools import CommandPolicy, default_registry
from telemetry import (
    Providers,
    Telemetry,
    TelemetrySettings,
    database_spans,
    suppress_client_spans,
)

_log = logging.getLogger(__name__)


def check_configuration(settings: Settings) -> None:
    """Refuse what would fail at start-up anyway, with a message naming the problem: an
    unusable agents file (the file and the entry), an unsupported ``DATABASE_URL``."""
    load_agents(settings.agents_file, known_tools=default_registry().names)
    _open_store(settings, None)


def _open_store(settings: Settings, providers: Providers | None) -> Store:
    url = settings.database_url.get_secret_value() if settings.database_url else None
    return open_store(
        url,
        settings.data_dir,
        StoreOptions(
            statement_timeout_s=settings.database_statement_timeout_s,
            pool_size=settings.database_pool_size,
            on_connect=database_spans(providers) if settings.database_spans else None,
            notify_decisions=settings.decision_notify,
        ),
    )


def _decision_signals(settings: Settings) -> DecisionSignals:
    """LISTEN on the shared store when its decisions are announced; else this process's
    own wake-ups (and the poll) only."""
    url = settings.database_url.get_secret_value() if settings.database_url else ""
    if settings.decision_notify and url.lower().startswith(("postgresql://", "postgres://")):
        rest = url.partition("://")[2]
        return PostgresSignals(f"postgresql://{rest}")
    return LocalSignals()


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """A recorded decision: the answer for the human, and the resumed run when this
    process resumes it (``answer["resumed"] == "here"``), still to be iterated."""

    answer: dict[str, Any]
    run: Run | None = None


@dataclass(slots=True)
class Runtime:
    """Every domain service of one application instance."""

    settings: Settings
    store: Store
    telemetry: Telemetry
    sessions: SessionManager
    hitl: HITLManager
    tools: ToolRunner
    orchestrator: MultiAgentOrchestrator
    feedback: FeedbackService
    signals: DecisionSignals = field(default_factory=LocalSignals)
    cluster: ClusterRefresher = field(init=False)
    """Feeds the telemetry's cluster gauges from the store (``run_forever`` in the
    lifespan)."""
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.cluster = ClusterRefresher(
            self.store, self.telemetry.cluster, interval_s=self.settings.cluster_refresh_s
        )

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        model: ChatModel | None = None,
        telemetry_settings: TelemetrySettings | None = None,
        telemetry_providers: Providers | None = None,
        audit_trail: bool = True,
    ) -> Runtime:
        """Open the store and wire the services; telemetry records with the global providers
        unless ``telemetry_providers`` are given (two runtimes side by side in one process, one
        recording and one not, as the per-run benchmark compares them). ``audit_trail=False``
        builds the telemetry without an audit trail: no audit record is written, stored with a
        change or shipped, and ``telemetry.audit`` is ``None``; the service always keeps one, a
        benchmark measures what it costs against a runtime without."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = _open_store(settings, telemetry_providers)
        await store.open()
        try:
            await import_legacy_audit(store, settings.data_dir)
        except StoreUnavailable:
            _log.warning("the older audit file is moved into the store at the next start")
        telemetry = Telemetry(
            settings=telemetry_settings,
            audit=store if audit_trail else None,
            providers=telemetry_providers,
        )
        telemetry.start()
        sessions = SessionManager(store, telemetry, run_lease_s=settings.run_lease_s)
        registry = default_registry(CommandPolicy(timeout_s=settings.command_timeout_s))
        signals = _decision_signals(settings)
        await signals.start()
        hitl = HITLManager(
            store,
            telemetry,
            telemetry.spans,
            timeout_s=settings.approval_timeout_s,
            validate_arguments=registry.validate,
            signals=signals,
            poll_s=settings.decision_poll_s,
        )
        tools = ToolRunner(
            registry, hitl, telemetry, settings.data_dir, workspaces=settings.workspace_dir
        )
        agents = load_agents(settings.agents_file, known_tools=registry.names)
        feedback = FeedbackService(store, telemetry)
        chat_model = model or create_model(
            settings.llm_provider,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            model=settings.openai_model,
        )
        orchestrator = MultiAgentOrchestrator(
            agents=agents,
            sessions=sessions,
            hitl=hitl,
            tools=tools,
            llm=LLMStreamService(chat_model, telemetry),
            events=telemetry,
            spans=telemetry.spans,
            context_max_tokens=settings.context_max_tokens,
            resume_wait_s=settings.run_lease_s + 1.0,
            feedback=feedback,
        )
        return cls(
            settings, store, telemetry, sessions, hitl, tools, orchestrator, feedback, signals
        )

    async def decide_and_resume(
        self,
        call_id: str,
        decision: Decision,
        *,
        arguments: dict[str, Any] | None,
        feedback: str | None,
        decided_by: str | None = None,
    ) -> DecisionOutcome:
        """Record a human decision (``decided_by``: who, as the gateway says). A stream that
        waits for it, on this replica or another whose run lease is alive, resumes the run
        there (``"resumed": "stream"``); when none waits any more, this process claims the
        run and returns it, to be iterated by the caller (``"resumed": "here"``)."""
        decided = await self.hitl.decide(
            call_id, decision, arguments=arguments, feedback=feedback, decided_by=decided_by
        )
        record, resolution = decided.record, decided.resolution
        answer: dict[str, Any] = {
            "call_id": call_id,
            "decision": resolution.decision,
            "session_id": record.session_id,
            "waiting_trace_id": record.trace_id,
        }
        if decided.live:
            return DecisionOutcome({**answer, "resumed": "stream", "trace_id": record.trace_id})
        if not await self.hitl.claim_resume(call_id):
            return DecisionOutcome({**answer, "resumed": "elsewhere", "trace_id": None})
        run = await self.orchestrator.resume(record, resolution)
        return DecisionOutcome({**answer, "resumed": "here"}, run)

    async def decide(
        self,
        call_id: str,
        decision: Decision,
        *,
        arguments: dict[str, Any] | None,
        feedback: str | None,
        decided_by: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`decide_and_resume`, with a run resumed here driven to its end: the answer
        then says how it ended (``outcome``, the agent's final ``text``, the decided call's
        ``result``) and in which trace (``trace_id``)."""
        outcome = await self.decide_and_resume(
            call_id, decision, arguments=arguments, feedback=feedback, decided_by=decided_by
        )
        if outcome.run is None:
            return outcome.answer
        return await summarise(outcome.answer, outcome.run)

    async def sweep(self) -> None:
        """Resume the runs nobody else will: approvals past their deadline that no stream
        waits for (timed out, the agent hears so), and decisions whose deciding process died
        before it resumed the run."""
        with suppress_client_spans():  # the polls are no request's: no trace of their own
            expired = await self.hitl.expired()
        for record in expired:
            run = await self.orchestrator.resume_expired(record)
            if run is not None:
                self._drain(run)
        with suppress_client_spans():
            unresumed = await self.hitl.unresumed(older_than_s=self.settings.run_lease_s * 2)
        for record in unresumed:
            if await self.hitl.claim_resume(record.call_id):
                self._drain(await self.orchestrator.resume(record, Resolution.of(record)))

    async def sweep_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sweep()
            except Exception:
                _log.exception("resuming paused runs failed; retrying in %.0f s", interval_s)

    def _drain(self, run: Run) -> None:
        async def drain() -> None:
            async for _ in run:
                pass

        task = asyncio.get_running_loop().create_task(drain())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        self.orchestrator.shutdown()
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(BaseException):
                await task
        await self.orchestrator.finished()
        await self.signals.close()
        await self.telemetry.aclose()
        await self.store.close()


async def summarise(
    answer: dict[str, Any], run: AsyncIterator[StreamEvent] | Run
) -> dict[str, Any]:
    """Drive a resumed run to its end; the decision's answer with how the run ended."""
    summary = dict(answer)
    text: list[str] = []
    async for event in run:  # to its end: nothing to close early
        if event.event == "meta":
            summary["trace_id"] = event.data["correlation_id"]
        elif event.event == "text":
            text.append(event.data["delta"])
        elif event.event in ("tool_call", "agent_switched"):
            text.clear()  # what came before was not the final answer
        elif event.event == "tool_result" and event.data["call_id"] == answer["call_id"]:
            summary["result"] = {k: v for k, v in event.data.items() if k != "call_id"}
        elif event.event == "error":
            summary["error"] = event.data
        elif event.event == "done":
            summary["outcome"] = event.data["outcome"]
            summary["agent"] = event.data["agent"]
    summary["text"] = "".join(text)
    return summary
