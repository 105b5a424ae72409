"""Measure candidate optimisations (``bench/experiments.py``) on benchmark 1's agent run:
telemetry on as shipped vs on + patch, interleaved workers, paired per round.

``python -m bench.experiment [PATCH …] [--rounds N]`` (default: each patch alone, then all).
"""

from __future__ import annotations

import argparse

from bench.experiments import PATCHES
from bench.proc import Worker
from bench.stats import row, summarize


def compare(patch: str, rounds: int, batch: int) -> None:
    variant = "off" if patch.startswith("off_") else "on"
    env = {"OTEL_SDK_DISABLED": "true"} if variant == "off" else {}
    workers = {
        "on": Worker("bench.run_worker", variant, env=env),
        patch: Worker("bench.run_worker", variant, env={**env, "BENCH_PATCH": patch}),
    }
    samples: dict[str, list[float]] = {name: [] for name in workers}
    try:
        for worker in workers.values():
            worker.ask("15")
        names = list(workers)
        for i in range(rounds):
            for name in names[i % 2 :] + names[: i % 2]:
                samples[name].append(workers[name].ask(str(batch))["mean_us"])
    finally:
        for worker in workers.values():
            worker.close()
    gain = summarize([a - b for a, b in zip(samples["on"], samples[patch], strict=True)])
    print(f"experiment {patch}: CPU us per agent run")
    print(row(f"telemetry {variant} (as shipped)", summarize(samples["on"])))
    print(row(f"telemetry {variant} + {patch}", summarize(samples[patch])))
    print(row("gain (paired rounds)", gain))


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.experiment")
    parser.add_argument("patches", nargs="*", default=list(PATCHES))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=12)
    args = parser.parse_args()
    for patch in args.patches:
        compare(patch, args.rounds, args.batch)


if __name__ == "__main__":
    main()
