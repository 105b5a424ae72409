"""bench/ benchmark 1: every variant's runtime runs the agent run to its end (the stubbed
``bare`` one included, whose stand-ins must keep up with the span objects' interface) and
exports what it should; the figures mean nothing at this size."""

from __future__ import annotations

from bench.run_worker import VARIANTS

from bench import per_run


def test_every_variant_runs_and_exports_its_trace() -> None:
    result = per_run.measure(quick=True, variants=VARIANTS)  # raises on a missing span
    assert result.overhead_us is not None and result.off_overhead_us is not None
