"""Where one agent run's CPU goes: cProfile over N in-process runs of a variant.

``python -m bench.profile_run on|tracing|off|unaudited|bare|sdk [N]`` prints the top functions
by own time and the cumulative time of the telemetry entry points, per run, in microseconds.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

from bench.run_worker import RunBench

AREAS = (
    "src/telemetry/",
    "opentelemetry/instrumentation/",
    "opentelemetry/sdk/trace/",
    "opentelemetry/sdk/metrics/",
    "opentelemetry/sdk/_logs/",
    "opentelemetry/attributes/",
    "opentelemetry/context/",
    "opentelemetry/trace/",
    "openai/",
    "httpx/",
    "pydantic",
    "aiosqlite/",
    "agent_runtime/",
)
HOT = (
    "emit.py(emit)",
    "audit.py(write)",
    "metrics.py(record)",
    "spans.py(request)",
    "spans.py(agent)",
    "spans.py(tool)",
    "_runs.py(start_chat)",
    "_runs.py(stop)",
    "_runs.py(_completed)",
    "_runs.py(_end)",
    "_runs.py(activate)",
    "subscribers.py(publish)",
    "counts.py(record)",
    "timeline.py(record)",
    "operation_metrics.py(agent_finished)",
    "operation_metrics.py(tool_finished)",
    "operation_metrics.py(chat_finished)",
    "_exporters.py(on_end)",
    "_exporters.py(admit)",
)


def main() -> None:
    variant = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as data_dir:
        bench = RunBench(Path(data_dir))
        bench.loop.run_until_complete(bench.batch(variant, 20))  # warm-up
        profiler = cProfile.Profile()
        profiler.enable()
        bench.loop.run_until_complete(bench.batch(variant, runs))
        profiler.disable()
        bench.close()
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    print(f"== {variant}: top own time, us per run (cProfile inflates absolute numbers)")
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:35]
    for (file, line, func), (_cc, calls, tottime, cumtime, _callers) in rows:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}({func})"
        print(
            f"  {tottime / runs * 1e6:8.1f} own {cumtime / runs * 1e6:8.1f} cum"
            f" {calls / runs:6.1f}x  {where}"
        )
    print(f"== {variant}: own time by area, us per run")
    for area in AREAS:
        own = sum(v[2] for (file, _line, _func), v in raw.items() if area in file)
        print(f"  {own / runs * 1e6:8.1f}  {area}")
    print(f"== {variant}: cumulative time of hot entry points, us per run (calls per run)")
    for hot in HOT:
        hits = [v for (file, _line, func), v in raw.items() if f"{Path(file).name}({func})" == hot]
        cum = sum(v[3] for v in hits)
        calls = sum(v[1] for v in hits)
        print(f"  {cum / runs * 1e6:8.1f}  ({calls / runs:4.1f}x)  {hot}")


if __name__ == "__main__":
    main()
