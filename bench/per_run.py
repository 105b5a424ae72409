"""Benchmark 1: CPU per agent run in process, telemetry recording vs spans only vs off vs
off without the audit trail vs stubbed out vs the same trace written by hand on the raw SDK.

One worker process runs the six variants (:mod:`bench.run_worker`) run after run, the
order rotating each round; each run's CPU (``time.process_time``: every thread, so the
batch processors' export threads count) is one sample. A difference (on - off, tracing - off,
off - bare, off - unaudited, sdk - bare) is taken within each round, between runs made
moments apart in the same process, and summarised over the rounds: the median, and the mean
(which keeps the odd run that a garbage collection or a neighbour stretched).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.proc import Worker
from bench.run_worker import LOG_RECORDS_PER_RUN, SPANS_PER_RUN, VARIANTS
from bench.stats import row, summarize

_DIFFERENCES = (
    ("on", "off", "on - off (same round)"),
    ("tracing", "off", "tracing - off: spans only"),
    ("off", "bare", "off - bare (same round)"),
    ("off", "unaudited", "off - unaudited: audit trail"),
    ("sdk", "bare", "sdk - bare: the trace by hand"),
)


@dataclass(frozen=True, slots=True)
class RunResult:
    """Medians of the same-round differences, ``None`` when a variant was not run."""

    overhead_us: float | None
    """on - off."""
    off_overhead_us: float | None
    """off - bare."""


def measure(*, quick: bool, variants: tuple[str, ...] = VARIANTS) -> RunResult:
    """Run ``variants`` (all by default) in rotation; print each one and every difference
    between two of them that were run. Fewer variants means less code between two runs of
    one (see the README on how much that moves the figures). The caller checks the names
    (``python -m bench`` as a usage error)."""
    rounds, warmup = (3, 2) if quick else (1500, 20)
    named = ",".join(variants)
    worker = Worker("bench.run_worker")
    try:
        worker.ask(f"{warmup} {named}")
        samples: dict[str, list[float]] = worker.ask(f"{rounds} {named}")["samples"]
        counts = worker.ask("spans")
    finally:
        worker.close()
    runs: dict[str, int] = counts["runs"]
    for name in ("on", "tracing", "sdk"):
        if counts[name]["spans"] != SPANS_PER_RUN * runs.get(name, 0):
            raise AssertionError(f"{name}: expected {SPANS_PER_RUN} spans per run, got {counts}")
    if counts["on"]["logs"] != LOG_RECORDS_PER_RUN * runs.get("on", 0):
        raise AssertionError(
            f"on: expected {LOG_RECORDS_PER_RUN} log records per run, got {counts}"
        )

    medians: dict[tuple[str, str], float] = {}
    print("1. per agent run (orchestrator -> coder, 1 tool call approved), CPU us per run")
    for variant in variants:
        print(row(f"telemetry {variant}", summarize(samples[variant])))
    for a, b, label in _DIFFERENCES:
        if a in samples and b in samples:
            paired = summarize([x - y for x, y in zip(samples[a], samples[b], strict=True)])
            mean = statistics.fmean(samples[a]) - statistics.fmean(samples[b])
            print(row(label, paired) + f"  mean {mean:.0f}")
            medians[a, b] = paired.median
    if "on" in runs:
        on = counts["on"]
        print(
            f"  exported spans per run: {on['spans'] / runs['on']:g} {on['names']};"
            f" log records per run {on['logs'] / runs['on']:g}"
        )
    return RunResult(medians.get(("on", "off")), medians.get(("off", "bare")))
