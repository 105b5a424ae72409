"""The application factory: settings in, a FastAPI app with its lifespan out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import metadata

from fastapi import FastAPI

import telemetry
from agent_runtime.api import api_router
from agent_runtime.api.auth import InternalAuthMiddleware
from agent_runtime.api.errors import register_error_handlers
from agent_runtime.api.middleware import BodyLimitMiddleware
from agent_runtime.llm import ChatModel
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings

_log = logging.getLogger(__name__)

_RESEND_CLAIM_INTERVALS = 3
"""Re-send intervals a re-sent audit record stays claimed by the process that sent it."""


def service_version() -> str:
    """The service's version, for the OpenAPI schema and the telemetry resource."""
    try:
        return metadata.version("agent-runtime")
    except metadata.PackageNotFoundError:
        return "0.0.0"


async def _resend_audit_forever(runtime: Runtime) -> None:
    """Ship again, every interval, the audit records no exporter acknowledged.

    A re-sent record stays this process's for a few intervals, time for its batch to reach
    the Collector and be acknowledged; when the process dies first, the other processes
    (or the next start) ship it once that claim lapses, so the lease follows the interval.
    """
    interval = runtime.settings.audit_resend_interval_s
    while True:
        await asyncio.sleep(interval)
        try:
            await runtime.telemetry.resend_audit(
                older_than_s=interval, lease_s=_RESEND_CLAIM_INTERVALS * interval
            )
        except Exception:
            _log.exception("audit re-send failed")


def create_app(
    settings: Settings | None = None,
    *,
    model: ChatModel | None = None,
    telemetry_providers: telemetry.Providers | None = None,
) -> FastAPI:
    """Build the app; telemetry is configured from the environment unless already done
    (``telemetry_providers``: what the caller's ``telemetry.configure()`` returned)."""
    settings = settings or Settings()
    if telemetry_providers is None and not telemetry.configured():
        telemetry_providers = telemetry.configure(service_version=service_version())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(
            settings, model=model, telemetry_providers=telemetry_providers
        )
        app.state.runtime = runtime
        resender = asyncio.create_task(_resend_audit_forever(runtime))
        sweeper = asyncio.create_task(runtime.sweep_forever(settings.sweep_interval_s))
        counter = asyncio.create_task(runtime.cluster.run_forever())
        try:
            yield
        finally:
            resender.cancel()
            sweeper.cancel()
            counter.cancel()
            await runtime.close()

    app = FastAPI(
        title="agent-runtime",
        version=service_version(),
        description="Multi-agent coding-assistant backend, OpenTelemetry-native.",
        lifespan=lifespan,
        # The interactive docs are not behind the key; with a key set only the schema stays.
        docs_url=None if settings.internal_key else "/docs",
        redoc_url=None if settings.internal_key else "/redoc",
    )
    register_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    if settings.internal_key is not None:
        app.add_middleware(InternalAuthMiddleware, key=settings.internal_key.get_secret_value())
    app.add_middleware(telemetry.CorrelationHeadersMiddleware)
    app.include_router(api_router)
    telemetry.instrument_asgi_app(app)
    return app
