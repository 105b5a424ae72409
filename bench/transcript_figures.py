"""Benchmark 7's figures: what one run measured, the marginal costs computed from it, and
how they are printed (:mod:`bench.per_transcript` runs the measurement)."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import transcripts
from bench.stats import summarize

HEADLINE_NAMES = ("on", "off")
"""The variants the headline figures are the worse of: telemetry on and off."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How much one run measures: rounds, and per round one phase of each size and kind."""

    rounds: int
    sizes: dict[int, int]
    """Transcript entries -> requests per phase."""
    chunks: tuple[int, int]
    """The short and the long answer, in chunks."""
    chunk_requests: int
    """Requests per phase of the streaming benchmark."""


@dataclass(slots=True)
class Samples:
    """Every measurement: one value per phase, or per round for the baselines."""

    cpu_us: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    """(variant, entries) -> server CPU per request."""
    kb: dict[int, float] = field(default_factory=dict)
    """Entries -> KB of ``messages`` in one model call."""
    json_us: dict[int, list[float]] = field(default_factory=dict)
    """Entries -> ``json.dumps`` + ``json.loads`` of the transcript."""
    chunk_cpu_us: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    """(variant, chunks) -> server CPU per request."""
    chunk_floor_us: list[float] = field(default_factory=list)
    idle_us_per_s: dict[str, float] = field(default_factory=dict)


def add(table: dict[Any, list[float]], key: Any, value: float) -> None:
    """Append ``value`` to ``table[key]``."""
    table.setdefault(key, []).append(value)


@dataclass(frozen=True, slots=True)
class TranscriptResult:
    """The headline figures of one run, and their floors."""

    kb_us: dict[str, float]
    """Variant -> marginal server CPU per KB of transcript, us."""
    json_kb_us: float
    """``json.dumps`` + ``json.loads`` per KB of the same transcripts, us."""
    chunk_us: dict[str, float]
    """Variant -> marginal server CPU per streamed chunk, us."""
    chunk_floor_us: float

    @property
    def kb_ratio(self) -> float:
        """The worse of ``on`` and ``off``: marginal CPU per KB over the JSON round trip's."""
        return max(self.kb_us[name] for name in HEADLINE_NAMES) / self.json_kb_us

    @property
    def chunk_ratio(self) -> float:
        """The worse of ``on`` and ``off``: CPU per chunk over the chunk's floor."""
        return max(self.chunk_us[name] for name in HEADLINE_NAMES) / self.chunk_floor_us


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def sent_messages(entries: int) -> int:
    """What one model call of a request carries: the agent's prompt, every entry of the
    transcript but its handoffs, and the new message."""
    return 1 + entries * 4 // transcripts.ENTRIES_PER_TURN + 1


def report(plan: Plan, samples: Samples, names: list[str], seed_s: float) -> TranscriptResult:
    """Print the tables; return the marginal figures and their floors."""
    sizes = list(plan.sizes)
    print(
        "7. per request against a transcript of N entries (orchestrator -> coder: 2 model calls,"
        " each with the whole transcript), server CPU us per request"
    )
    idle = ", ".join(f"{name} {us:.0f} us/s" for name, us in samples.idle_us_per_s.items())
    print(f"  sessions seeded in {seed_s:.0f} s; idle server CPU: {idle}")
    header = "".join(f"{name:>24}" for name in names)
    print(f"  {'entries':>7} {'messages':>8} {'KB/call':>8}{header}{'json us':>10}")
    for size in sizes:
        cells = "".join(f"{_cell(samples.cpu_us[name, size]):>24}" for name in names)
        json_us = statistics.median(samples.json_us[size])
        sent = sent_messages(size)
        print(f"  {size:>7} {sent:>8} {samples.kb[size]:>8.1f}{cells}{json_us:>10.1f}")
    json_kb = slope([(samples.kb[s], statistics.median(samples.json_us[s])) for s in sizes])
    kb_us = {
        name: slope([(samples.kb[s], statistics.median(samples.cpu_us[name, s])) for s in sizes])
        for name in names
    }
    print(f"  json.dumps + json.loads of the same transcripts: {json_kb:.2f} us/KB")
    for name in names:
        steps = ", ".join(
            f"{a}->{b} {_step(samples, name, a, b):.1f}" for a, b in itertools.pairwise(sizes)
        )
        print(
            f"  marginal per KB, {name}: {kb_us[name]:.1f} us/KB ({steps})"
            f" = {kb_us[name] / json_kb:.2f}x json (goal <= 3x)"
        )
    short, long = plan.chunks
    floor = statistics.median(samples.chunk_floor_us)
    print(
        f"  per streamed chunk, {long} chunks against {short} ({plan.chunk_requests} requests a"
        f" phase); json.loads of the chunk + its SSE event: {floor:.2f} us"
    )
    chunk_us: dict[str, float] = {}
    for name in names:
        a = statistics.median(samples.chunk_cpu_us[name, short])
        b = statistics.median(samples.chunk_cpu_us[name, long])
        chunk_us[name] = (b - a) / (long - short)
        print(
            f"    {name}: {a:,.0f} -> {b:,.0f} us per request: {chunk_us[name]:.1f} us per chunk"
            f" = {chunk_us[name] / floor:.1f}x the floor (goal <= 3x)"
        )
    return TranscriptResult(kb_us, json_kb, chunk_us, floor)


def _cell(values: list[float]) -> str:
    summary = summarize(values)
    return f"{summary.median:,.0f} ±{summary.spread * 50:.0f}%"


def _step(samples: Samples, name: str, a: int, b: int) -> float:
    rise = statistics.median(samples.cpu_us[name, b]) - statistics.median(samples.cpu_us[name, a])
    return rise / (samples.kb[b] - samples.kb[a])
