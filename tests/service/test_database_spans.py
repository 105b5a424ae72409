"""The database client spans on PostgreSQL: each belongs to the request that made it.

A statement the service makes for itself (the pool's connection check on every checkout,
the migrations at start-up, the audit outbox's writes and re-sends, the sweeper's polls, the
cluster gauges' reads, a waiting stream's re-reads of its approval)
makes no span: none is a trace of its own, and no request carries a nameless check span
beside each of its statements.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from agent_runtime.app import create_app
from agent_runtime.settings import Settings
from tests.service.conftest import Conversation
from tests.support.otel import Telemetered
from tests.support.server import serve


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """PostgreSQL only: SQLite makes no database spans."""
    return postgres_url


def _trace(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


async def test_every_database_span_is_a_requests_and_named(
    telemetered: Telemetered, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        sweep_interval_s=0.05, audit_resend_interval_s=0.05, cluster_refresh_s=0.05
    )
    with serve(create_app(settings)) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            coder = Conversation(http)
            await coder.send(
                "db-coder", "Create a sorting function", decide={"decision": "APPROVE"}
            )
            assert coder.of("done")[0]["outcome"] == "completed"
            ask = Conversation(http)
            await ask.send("db-ask", "What is a closure?")
            assert (await http.get("/readyz")).status_code == 200
    # The server has stopped: the migrations, the sweeper's polls (every 50 ms while the
    # requests ran), the audit outbox's writes, re-sends and acknowledgements (the last at
    # shutdown) have all happened.
    spans = telemetered.spans()
    database = [s for s in spans if "db.system" in (s.attributes or {})]
    served = {_trace(s) for s in spans if s.kind == SpanKind.SERVER}
    assert len(database) > 10, "no database client spans: is the instrumentation on?"
    strays = sorted({s.name for s in database if _trace(s) not in served})
    assert strays == [], f"database spans outside any request: {strays}"
    assert all(s.name for s in database), "a nameless span: the pool's connection check"
    assert all(s.kind == SpanKind.CLIENT and s.parent is not None for s in database)
