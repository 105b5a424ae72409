"""Candidate optimisations, applied by monkeypatching in a benchmark worker only
(``BENCH_PATCH=name[,name]``), so their gain is measured before anyone edits src/.

- ``no_exemplars``: ``OTEL_METRICS_EXEMPLAR_FILTER=always_off`` (configuration only): the
  SDK stops offering every histogram point to an exemplar reservoir.
"""

from __future__ import annotations

import os
from collections.abc import Callable

PATCHES: dict[str, Callable[[], None]] = {
    "no_exemplars": lambda: os.environ.__setitem__("OTEL_METRICS_EXEMPLAR_FILTER", "always_off"),
}


def apply_from_env() -> list[str]:
    names = [n for n in os.environ.get("BENCH_PATCH", "").split(",") if n]
    for name in names:
        PATCHES[name]()
    return names
