"""Benchmark 1: CPU per agent run in process, telemetry recording vs off vs stubbed out.

One worker process per variant (global OTel providers can be set once per process); rounds
alternate between them (rotating the order), each round a batch of runs; the CPU of a batch
(``time.process_time``: every thread, so the batch processors' export threads count) divided
by its runs is one sample; each run's own CPU is kept too, and the headline differences
compare, round by round, the variants' median run.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.proc import Worker
from bench.run_worker import SPANS_PER_RUN
from bench.stats import Summary, row, summarize

VARIANTS = ("on", "off", "bare", "sdk")


@dataclass(frozen=True, slots=True)
class RunResult:
    on: Summary
    off: Summary
    bare: Summary
    overhead_us: float
    off_overhead_us: float
    sdk_floor_us: float
    spans_per_run: float


def measure(*, quick: bool) -> RunResult:
    rounds, batch, warmup = (2, 2, 2) if quick else (40, 20, 15)
    workers = {
        v: Worker("bench.run_worker", v, env={"OTEL_SDK_DISABLED": "true"} if v == "off" else {})
        for v in VARIANTS
    }
    batches: dict[str, list[float]] = {v: [] for v in VARIANTS}
    runs: dict[str, list[float]] = {v: [] for v in VARIANTS}
    round_medians: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        for worker in workers.values():
            worker.ask(str(warmup))
        for i in range(rounds):
            shift = i % len(VARIANTS)
            order = VARIANTS[shift:] + VARIANTS[:shift]
            for variant in order:
                answer = workers[variant].ask(str(batch))
                batches[variant].append(answer["mean_us"])
                runs[variant].extend(answer["runs"])
                round_medians[variant].append(statistics.median(answer["runs"]))
        counts = workers["on"].ask("spans")
        by_hand = workers["sdk"].ask("spans")
    finally:
        for worker in workers.values():
            worker.close()
    per_run = counts["spans"] / counts["runs"]
    if counts["spans"] != SPANS_PER_RUN * counts["runs"]:
        raise AssertionError(f"expected {SPANS_PER_RUN} spans per run, exported {counts}")
    if by_hand["spans"] != SPANS_PER_RUN * by_hand["runs"]:
        raise AssertionError(f"the handwritten trace has {by_hand} spans")
    summaries = {v: summarize(batches[v]) for v in VARIANTS}

    # Each round's difference of the two variants' median run: pairing by round cancels
    # the machine's drift, the median run within a round ignores the odd run that a
    # neighbour or a full garbage collection stretched (batch means carry those).
    def paired(a: str, b: str) -> Summary:
        return summarize([x - y for x, y in zip(round_medians[a], round_medians[b], strict=True)])

    def paired_means(a: str, b: str) -> Summary:
        return summarize([x - y for x, y in zip(batches[a], batches[b], strict=True)])

    overhead, off_cost, floor = paired("on", "off"), paired("off", "bare"), paired("sdk", "bare")
    print("1. per agent run (orchestrator -> coder, 1 tool call approved), CPU us per run")
    for variant in VARIANTS:
        print(row(f"telemetry {variant} (batch means)", summaries[variant]))
        print(row(f"telemetry {variant} (single runs)", summarize(runs[variant])))
    print(row("overhead on - off (paired rounds)", overhead))
    print(row("overhead off - bare (paired rounds)", off_cost))
    print(row("on - off, batch means (GC included)", paired_means("on", "off")))
    print(row("same trace by hand, sdk - bare", floor))
    print(f"  exported spans per run: {per_run:g} {counts['names']}; log records {counts['logs']}")
    return RunResult(
        summaries["on"],
        summaries["off"],
        summaries["bare"],
        overhead.median,
        off_cost.median,
        floor.median,
        per_run,
    )
