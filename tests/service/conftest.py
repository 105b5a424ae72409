"""Fixtures for tests that drive the service over real HTTP, on both stores.

``make_settings`` (and so ``server`` and ``client``) runs each test twice: on the embedded
SQLite store (``DATABASE_URL`` unset) and on a fresh PostgreSQL database (the session's
real server, ``tests/support/postgres.py``), so the HTTP contract is checked on both. A
module that is about something else than the store may pin one backend by overriding the
``database_url`` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_runtime.app import create_app
from agent_runtime.settings import Settings
from tests.support.otel import Telemetered
from tests.support.server import SSE, RunningServer, serve, sse_events

KEY = "test-internal-key-0123456789"


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str | None) -> Callable[..., Settings]:
    """Settings in this test's data directory, on this run's backend (``database_url``:
    None for SQLite, a PostgreSQL URL); ``overrides`` win."""

    def build(**overrides: Any) -> Settings:
        overrides.setdefault("database_url", database_url)
        return Settings(data_dir=tmp_path / "data", **overrides)

    return build


@pytest.fixture
def server(
    telemetered: Telemetered, make_settings: Callable[..., Settings]
) -> Iterator[RunningServer]:
    with serve(create_app(make_settings())) as running:
        yield running


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http


class Conversation:
    """Posts a message and collects its SSE events, deciding approvals on the way."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.headers: httpx.Headers | None = None
        self.events: list[SSE] = []
        self.decisions: list[httpx.Response] = []

    async def send(
        self,
        session_id: str,
        message: str,
        *,
        decide: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        agent: str | None = None,
    ) -> list[SSE]:
        body: dict[str, Any] = {"session_id": session_id, "message": message}
        if agent:
            body["agent"] = agent
        async with self.http.stream(
            "POST", "/agent/message/stream", json=body, headers=headers or {}
        ) as response:
            assert response.status_code == 200, await response.aread()
            self.headers = response.headers
            async for event in sse_events(response):
                self.events.append(event)
                if event.event == "approval_required" and decide is not None:
                    self.decisions.append(
                        await self.http.post(
                            f"/v1/approvals/{event.data['call_id']}",
                            json=decide,
                            headers=headers or {},
                        )
                    )
        return self.events

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.event == name]
