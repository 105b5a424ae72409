"""Database client spans, from the official OpenTelemetry instrumentation of psycopg.

A connection pool calls the returned hook with every new connection: its statements become
``CLIENT`` spans (children of whatever span is current: the request's), named by their
operation, with the server's address and the database, never the statement's parameters.

The statements a process makes for itself, outside any request (the pool's connection
check, the migrations at start-up, the audit outbox's writes, background polling), run in
:func:`telemetry.suppression.suppress_client_spans`: each would otherwise be a one-span
trace of its own (the check also a nameless child beside each statement of a request),
noise that costs as much as a request's own spans.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

from telemetry.setup import Providers

__all__ = ["database_spans"]


def database_spans(providers: Providers | None = None) -> Callable[[Any], None]:
    """A hook that instruments one psycopg connection (sync or async) with the tracer
    provider of ``providers`` (default: the global one)."""
    tracer_provider = providers.tracer_provider if providers is not None else None

    def instrument(connection: Any) -> None:
        PsycopgInstrumentor.instrument_connection(connection, tracer_provider=tracer_provider)

    return instrument
