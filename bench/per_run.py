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
from bench.run_worker import SPANS_PER_RUN, VARIANTS
from bench.stats import Summary, row, summarize


@dataclass(frozen=True, slots=True)
class RunResult:
    overhead_us: float
    off_overhead_us: float
    sdk_floor_us: float
    tracing_us: float
    """Spans only (no metrics, no log records): what the peers' figures of issue 5 measure."""


def measure(*, quick: bool) -> RunResult:
    rounds, warmup = (3, 2) if quick else (1500, 20)
    worker = Worker("bench.run_worker")
    try:
        worker.ask(str(warmup))
        samples: dict[str, list[float]] = worker.ask(str(rounds))["samples"]
        counts = worker.ask("spans")
    finally:
        worker.close()
    total_rounds = counts["rounds"]
    for name in ("on", "tracing", "sdk"):
        if counts[name]["spans"] != SPANS_PER_RUN * total_rounds:
            raise AssertionError(f"{name}: expected {SPANS_PER_RUN} spans per run, got {counts}")

    def paired(a: str, b: str) -> Summary:
        return summarize([x - y for x, y in zip(samples[a], samples[b], strict=True)])

    def mean_gap(a: str, b: str) -> float:
        return statistics.fmean(samples[a]) - statistics.fmean(samples[b])

    overhead, off_cost, floor = paired("on", "off"), paired("off", "bare"), paired("sdk", "bare")
    tracing, audit_trail = paired("tracing", "off"), paired("off", "unaudited")
    print("1. per agent run (orchestrator -> coder, 1 tool call approved), CPU us per run")
    for variant in VARIANTS:
        print(row(f"telemetry {variant}", summarize(samples[variant])))
    print(row("on - off (same round)", overhead) + f"  mean {mean_gap('on', 'off'):.0f}")
    print(row("tracing - off: spans only", tracing) + f"  mean {mean_gap('tracing', 'off'):.0f}")
    print(row("off - bare (same round)", off_cost) + f"  mean {mean_gap('off', 'bare'):.0f}")
    print(
        row("off - unaudited: audit trail", audit_trail)
        + f"  mean {mean_gap('off', 'unaudited'):.0f}"
    )
    print(row("sdk - bare: the trace by hand", floor) + f"  mean {mean_gap('sdk', 'bare'):.0f}")
    on = counts["on"]
    print(
        f"  exported spans per run: {on['spans'] / total_rounds:g} {on['names']};"
        f" log records per run {on['logs'] / total_rounds:g}"
    )
    return RunResult(overhead.median, off_cost.median, floor.median, tracing.median)
