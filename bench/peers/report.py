"""The figures of ``make bench-peers``: per-run CPU, telemetry cost, goals, the one line.

Every difference is taken between runs of one process made moments apart (the variants
alternate run by run, the order rotating each round) and summarised over all rounds: the
median of those same-round differences (the headline) and the difference of the means
(which also carries the work that batching moves into whichever run it lands in).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.peers.frameworks import Framework
from bench.stats import Summary, summarize

OTEL_PEERS = ("pydantic_ai", "agents_oi", "langgraph_oi")
"""The OpenTelemetry-based peers (the first goal's yardstick); agents_native is not OTel."""
RATIOS = ("pydantic_ai", "agents_oi", "agents_native", "langgraph_oi", "floor")
LINE = (
    ("runtime", "on"),
    ("runtime", "off"),
    ("pydantic_ai", "on"),
    ("pydantic_ai", "off"),
    ("agents_oi", "on"),
    ("agents_oi", "off"),
    ("agents_native", "on"),
    ("langgraph_oi", "on"),
    ("langgraph_oi", "off"),
    ("floor", "on"),
    ("floor", "off"),
)


@dataclass(slots=True)
class Measured:
    """One framework's samples (µs per run, by variant, round after round) and counts."""

    framework: Framework
    ready: dict[str, Any]
    rounds: list[dict[str, list[float]]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    def samples(self, variant: str) -> list[float]:
        return [x for r in self.rounds for x in r[variant]]

    def summary(self, variant: str) -> Summary:
        return summarize(self.samples(variant))

    def paired(self, a: str, b: str) -> list[float]:
        """``a - b`` run by run within each round."""
        return [x - y for r in self.rounds for x, y in zip(r[a], r[b], strict=True)]

    def cost(self, a: str = "on", b: str = "off") -> float:
        """Median of the same-round differences ``a - b``."""
        return statistics.median(self.paired(a, b))

    def mean_cost(self, a: str = "on", b: str = "off") -> float:
        return statistics.fmean(self.samples(a)) - statistics.fmean(self.samples(b))


def check_counts(measured: Measured) -> None:
    """Exported spans and log records must be exactly what the table expects per run."""
    fw, counts = measured.framework, measured.counts
    runs: dict[str, int] = counts["runs"]
    expectations = (
        ("spans", fw.spans),
        ("histogram_points", fw.histogram_points),
        ("logs", fw.logs),
    )
    for key, per_variant in expectations:
        expected = sum(per_variant.get(v, 0) * runs.get(v, 0) for v in fw.variants)
        if counts.get(key, 0) != expected:
            raise AssertionError(
                f"{fw.label}: exported {counts.get(key)} {key} in {runs} runs, expected"
                f" {expected} ({per_variant} per run); by name: {counts.get('names')}"
            )


def _row(label: str, s: Summary) -> str:
    return (
        f"  {label:<44} median {s.median:8.0f}  p90 {s.p90:8.0f}"
        f"  spread(p10-p90) ±{s.spread * 50:4.1f}%  n={s.n}"
    )


def _exported(framework: Framework, variant: str) -> str:
    return (
        f"{framework.spans[variant]} spans, {framework.histogram_points.get(variant, 0)}"
        f" histogram points, {framework.logs.get(variant, 0)} log records per run"
    )


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs > 0 else "NA"


def print_runs(results: Sequence[Measured]) -> None:
    print("per run, CPU of the driver process (all threads), µs:")
    for m in results:
        for variant in m.framework.variants:
            print(_row(f"{m.framework.label}: {variant}", m.summary(variant)))
    print("drift: each round's median of the off runs (µs), round by round:")
    for m in results:
        medians = [statistics.median(r["off"]) for r in m.rounds]
        print(f"  {m.framework.label:<44} " + " ".join(f"{x:.0f}" for x in medians))


def print_costs(by_key: dict[str, Measured]) -> None:
    print("telemetry cost per run, on - off (median of same-round differences; mean beside), µs,")
    print("and what each exported per run:")
    for key in ("runtime", *RATIOS):
        if key not in by_key:
            continue
        m = by_key[key]
        names = m.counts.get("names", {})
        runs_on = m.counts["runs"].get("on", 0)
        detail = ", ".join(f"{n} {c / runs_on:g}" for n, c in sorted(names.items()) if runs_on)
        print(
            f"  {m.framework.label:<34} {m.cost():+8.0f}  (mean {m.mean_cost():+8.0f})"
            f"  {_exported(m.framework, 'on')}"
        )
        if detail and key != "floor":
            print(f"  {'':<34} spans: {detail}")
    if "split" in by_key:
        split = by_key["split"]
        print(
            f"  {'what only agent-runtime does':<34} {split.cost('off', 'lean'):+8.0f}"
            f"  (mean {split.mean_cost('off', 'lean'):+8.0f})  off - lean; the audit trail"
            f" {split.cost('off', 'unaudited'):+.0f}, the durable session and transcript"
            f" {split.cost('unaudited', 'lean'):+.0f}"
        )
    if "floor" not in by_key:
        return
    floor = by_key["floor"]
    print(
        f"  {'floor with all our signals':<34} {floor.cost('signals', 'off'):+8.0f}"
        f"  (mean {floor.mean_cost('signals', 'off'):+8.0f})"
        f"  {_exported(floor.framework, 'signals')}"
    )


def print_goals(by_key: dict[str, Measured]) -> None:
    runtime, floor, split = by_key["runtime"], by_key["floor"], by_key["split"]
    ours, ours_mean = runtime.cost(), runtime.mean_cost()
    peers = {k: by_key[k].cost() for k in OTEL_PEERS}
    cheapest = min(peers, key=lambda k: peers[k])
    theirs, theirs_mean = peers[cheapest], by_key[cheapest].mean_cost()
    print("goals (this run):")
    print(
        f"  our telemetry cost {ours:.0f} µs <= 0.5x the cheapest OTel-based peer's"
        f" ({by_key[cheapest].framework.label}, {theirs:.0f} µs): {_ratio(ours, theirs)}x"
        f" (means: {_ratio(ours_mean, theirs_mean)}x), {_verdict(ours <= 0.5 * theirs)}"
    )
    print(
        f"  our telemetry cost <= 1.25x the hand-written floor ({floor.cost():.0f} µs):"
        f" {_ratio(ours, floor.cost())}x (means: {_ratio(ours_mean, floor.mean_cost())}x),"
        f" {_verdict(ours <= 1.25 * floor.cost())}"
    )
    only_ours = split.cost("off", "lean")
    off = runtime.summary("off").median
    offs = {k: by_key[k].summary("off").median for k in OTEL_PEERS}
    cheapest_off = min(offs, key=lambda k: offs[k])
    print(
        f"  our off cost {off:.0f} µs <= the cheapest peer's off"
        f" ({by_key[cheapest_off].framework.label}, {offs[cheapest_off]:.0f} µs) + what only we"
        f" do ({only_ours:.0f} µs): {_verdict(off <= offs[cheapest_off] + only_ours)}"
    )
    print(
        f"    the split: what only agent-runtime does, off - lean, {only_ours:.0f} µs"
        f" (mean {split.mean_cost('off', 'lean'):.0f}): the audit trail"
        f" {split.cost('off', 'unaudited'):.0f} µs (off - unaudited), the durable session and"
        f" transcript {split.cost('unaudited', 'lean'):.0f} µs (unaudited - lean); the rest of"
        f" the runtime {off - only_ours:.0f} µs against the cheapest peer's"
        f" {offs[cheapest_off]:.0f} µs and the raw client's {floor.summary('off').median:.0f} µs"
        " (the floor, off)"
    )
    print(
        f"    (the off runtime of the split's process: {split.summary('off').median:.0f} µs;"
        " absolute figures of two processes differ by the machine's drift between them,"
        " differences within one process do not)"
    )


def _verdict(met: bool) -> str:
    return "met" if met else "not met"


def line(by_key: dict[str, Measured]) -> str:
    fields = [f"{k}_{v}_us={by_key[k].summary(v).median:.0f}" for k, v in LINE]
    ours = by_key["runtime"].cost()
    fields += [f"ratio_{k}={_ratio(ours, by_key[k].cost())}" for k in RATIOS]
    return "peers: " + " ".join(fields)
