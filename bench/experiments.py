"""Candidate optimisations, applied by monkeypatching in a benchmark worker only
(``BENCH_PATCH=name[,name]``), so their gain is measured before anyone edits src/.

- ``no_exemplars``: ``OTEL_METRICS_EXEMPLAR_FILTER=always_off`` (configuration only): the
  SDK stops offering every histogram point to an exemplar reservoir.
- ``no_chunk_metrics``: util-genai's per-stream-chunk histograms (time to first chunk,
  time per output chunk: ~18 points per run) not recorded.
- ``off_no_openai_instr``: with telemetry disabled, ``configure`` does not instrument the
  openai client (its wrapper and util-genai invocations run in full on no-op providers).
- ``async_audit``: ``AuditLog.write`` hands the record to a writer thread that commits in
  batches (group commit) instead of committing on the event loop.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

from telemetry import audit as audit_module


def _no_chunk_metrics() -> None:
    from opentelemetry.util.genai import _invocation

    def record_stream_chunk(self: Any) -> None:
        self._request_stream = True

    _invocation.GenAIInvocation.record_stream_chunk = record_stream_chunk  # type: ignore[method-assign]


def _async_audit() -> None:
    pending: queue.SimpleQueue[tuple[Any, tuple[Any, ...]]] = queue.SimpleQueue()

    def writer() -> None:
        while True:
            batch = [pending.get()]
            while len(batch) < 256:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            log = batch[0][0]
            with log._lock:
                log._db.execute("BEGIN")
                log._db.executemany(audit_module.INSERT_RECORD, [row for _, row in batch])
                log._db.execute("COMMIT")

    threading.Thread(target=writer, name="audit-writer", daemon=True).start()

    def write(self: Any, event: Any, attributes: Any, context: Any) -> Any:
        record = audit_module.AuditRecord.new(event, attributes, context)
        row = record.row()
        pending.put((self, row))
        self._emit_log(record, context)
        return record

    audit_module.AuditLog.write = write  # type: ignore[method-assign]


def _skip_instrumentation_when_disabled() -> None:
    import functools

    import telemetry
    from telemetry import setup

    configure = functools.partial(setup.configure, instrument_openai=False)
    telemetry.configure = configure


PATCHES = {
    "off_no_openai_instr": _skip_instrumentation_when_disabled,
    "no_exemplars": lambda: os.environ.__setitem__("OTEL_METRICS_EXEMPLAR_FILTER", "always_off"),
    "no_chunk_metrics": _no_chunk_metrics,
    "async_audit": _async_audit,
}


def apply_from_env() -> list[str]:
    names = [n for n in os.environ.get("BENCH_PATCH", "").split(",") if n]
    for name in names:
        PATCHES[name]()
    return names
