"""The running service's parts, wired once: what the api layer calls into.

Built at start-up from :class:`Settings`; closed at shutdown. Nothing here knows HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent_runtime.hitl import Decision, HITLManager
from agent_runtime.llm import ChatModel, create_model
from agent_runtime.orchestrator import MultiAgentOrchestrator
from agent_runtime.sessions import SessionManager
from agent_runtime.settings import Settings
from agent_runtime.store import Store, open_store
from agent_runtime.toolrunner import ToolRunner
from agent_runtime.tools import CommandPolicy, default_registry
from telemetry import Providers, Telemetry, TelemetrySettings


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

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        model: ChatModel | None = None,
        telemetry_settings: TelemetrySettings | None = None,
        telemetry_providers: Providers | None = None,
    ) -> Runtime:
        """Open the store and wire the services; telemetry records with the global providers
        unless ``telemetry_providers`` are given (benchmark 1 runs two runtimes side by side,
        one recording and one not)."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(settings.database_url, settings.data_dir)
        await store.open()
        telemetry = Telemetry(
            settings=telemetry_settings,
            audit_path=settings.data_dir / "audit.db",
            providers=telemetry_providers,
        )
        sessions = SessionManager(store, telemetry)
        registry = default_registry(CommandPolicy(timeout_s=settings.command_timeout_s))
        hitl = HITLManager(
            store,
            telemetry,
            timeout_s=settings.approval_timeout_s,
            validate_arguments=registry.validate,
        )
        tools = ToolRunner(registry, hitl, telemetry, settings.data_dir)
        chat_model = model or create_model(
            settings.llm_provider,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            model=settings.openai_model,
        )
        orchestrator = MultiAgentOrchestrator(
            sessions=sessions, hitl=hitl, tools=tools, model=chat_model, telemetry=telemetry
        )
        return cls(settings, store, telemetry, sessions, hitl, tools, orchestrator)

    async def decide(
        self,
        call_id: str,
        decision: Decision,
        *,
        arguments: dict[str, Any] | None,
        feedback: str | None,
    ) -> dict[str, Any]:
        """Record a human decision; when no stream waits any more, resume the work here."""
        record, resolution, live = await self.hitl.decide(
            call_id, decision, arguments=arguments, feedback=feedback
        )
        answer: dict[str, Any] = {
            "call_id": call_id,
            "decision": resolution.decision,
            "session_id": record.session_id,
            "trace_id": record.trace_id,
            "resumed": "stream" if live else "here",
        }
        if not live:
            answer["result"] = await self.tools.resume(record, resolution)
        return answer

    async def close(self) -> None:
        self.orchestrator.shutdown()
        await self.store.close()
        self.telemetry.close()
