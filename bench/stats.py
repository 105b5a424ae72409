"""Medians, tails and spread of repeated measurements, and how they are printed."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Summary:
    """Distribution of one measured quantity (same unit as the samples)."""

    n: int
    median: float
    p99: float
    p10: float
    p90: float

    @property
    def spread(self) -> float:
        """Relative spread: (p90 - p10) / median."""
        return (self.p90 - self.p10) / self.median if self.median else 0.0

    def line(self, unit: str = "us") -> str:
        return (
            f"median {self.median:9.2f} {unit}  p99 {self.p99:9.2f} {unit}"
            f"  spread(p10-p90) ±{self.spread * 50:4.1f}%  n={self.n}"
        )


def quantile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (q in [0, 1]); 0.0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(samples: Sequence[float]) -> Summary:
    if not samples:
        return Summary(0, 0.0, 0.0, 0.0, 0.0)
    return Summary(
        n=len(samples),
        median=statistics.median(samples),
        p99=quantile(samples, 0.99),
        p10=quantile(samples, 0.10),
        p90=quantile(samples, 0.90),
    )


def row(label: str, summary: Summary, unit: str = "us") -> str:
    return f"  {label:<34} {summary.line(unit)}"
