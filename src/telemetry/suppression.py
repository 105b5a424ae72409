"""Blocks in which no instrumentation makes a span: a process's housekeeping I/O.

The official instrumentations (psycopg's database client spans, HTTP clients) honour
OpenTelemetry's suppression flag in the current context; this layer's own spans do not
read it. So a statement the service makes for itself, outside any request (the pool's
connection check, the migrations, the audit outbox's writes, background polling), runs in
:func:`suppress_client_spans` instead of starting a one-span trace of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.instrumentation.utils import suppress_instrumentation

__all__ = ["suppress_client_spans"]


@contextmanager
def suppress_client_spans() -> Iterator[None]:
    """No instrumentation makes a span inside the block (in this task, and in the tasks it
    starts there, which copy its context). Wrap the housekeeping call, never a request."""
    with suppress_instrumentation():
        yield
