"""bench/ benchmark 1: every variant's runtime runs the agent run to its end (the stubbed
``bare`` one included, whose stand-ins must keep up with the span objects' interface) and
exports what it should (the figures mean nothing at this size); the ``unaudited`` variant's
runtime, built without an audit trail, writes no audit record."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.run_worker import LOG_RECORDS_PER_RUN, VARIANTS, agent_run

from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from bench import per_run


def test_every_variant_runs_and_exports_its_trace() -> None:
    result = per_run.measure(quick=True, variants=VARIANTS)  # raises on a missing span
    assert result.overhead_us is not None and result.off_overhead_us is not None


@pytest.mark.parametrize("audit_trail", [True, False])
async def test_a_runtime_without_an_audit_trail_writes_no_record(
    tmp_path: Path, audit_trail: bool
) -> None:
    runtime = await Runtime.start(
        Settings(data_dir=tmp_path, llm_provider="scripted"), audit_trail=audit_trail
    )
    try:
        await agent_run(runtime, "s1")
        await runtime.telemetry.flush()
        stored = await runtime.store.query_audit(session_id=None, event_type=None, limit=100)
    finally:
        await runtime.close()
    assert len(stored) == (LOG_RECORDS_PER_RUN if audit_trail else 0)
    assert (runtime.telemetry.audit is None) is not audit_trail
