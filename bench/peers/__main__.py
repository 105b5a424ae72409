"""``python -m bench.peers [--quick | --check] [--rounds R] [--runs K] [--only KEYS]``.

Starts the workload server and one driver process per framework (see
:mod:`bench.peers.frameworks`), warms each up, then runs the rounds: in each round every
driver in turn (the order rotating) runs ``K`` runs of each of its variants, alternating
run by run. Only one driver works at a time, the server on the other core. Then each
driver's exported counts are checked, and the figures printed (:mod:`bench.peers.report`),
ending with the one ``peers:`` line.

``--check`` (CI) only starts the server and every driver (imports and builds each
framework's agent) and stops them; ``--quick`` runs everything for a moment.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.peers import report
from bench.peers.frameworks import FRAMEWORKS, Driver, WorkloadProcess
from bench.peers.workload import FILE_NAME, FILE_TEXT


def _check_server(server: WorkloadProcess, before: dict[str, int], runs: int, label: str) -> None:
    """Two model calls and one tool call per run, nothing refused."""
    after = server.stats()
    delta = {k: after[k] - before[k] for k in ("requests", "tool_calls", "answers", "refused")}
    expected = {"requests": 2 * runs, "tool_calls": runs, "answers": runs, "refused": 0}
    if delta != expected:
        raise AssertionError(f"{label}: the server saw {delta}, expected {expected}: {after}")


def _cpu_jiffies() -> tuple[int, int, int]:
    """All CPUs since boot: (total, idle + iowait, steal), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4], fields[7]


def _busy(before: tuple[int, int, int]) -> str:
    total, idle, steal = (b - a for a, b in zip(before, _cpu_jiffies(), strict=True))
    if total <= 0:
        return "CPU use not known"
    return (
        f"the CPUs were {100 * (total - idle) / total:.0f}% busy (every process, this"
        f" benchmark's driver and server included: about one core), {100 * steal / total:.1f}%"
        " stolen by the hypervisor"
    )


def _machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, load average {load}, {time.strftime('%Y-%m-%d %H:%M')}"
    )


def _wait_ready(drivers: list[Driver]) -> None:
    started = time.monotonic()
    for driver in drivers:
        framework = driver.framework
        driver.wait_ready()
        if tuple(driver.ready["variants"]) != framework.variants:
            raise AssertionError(f"{framework.label}: variants {driver.ready['variants']}")
        versions = ", ".join(f"{k} {v}" for k, v in driver.ready["versions"].items())
        agent = f" (agent {driver.ready['agent']})" if "agent" in driver.ready else ""
        print(f"  {framework.label}{agent}: {versions}")
    print(f"  (all ready in {time.monotonic() - started:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.peers", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="start everything, run nothing")
    mode.add_argument("--quick", action="store_true", help="a moment of each: checks they run")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--runs", type=int, help="runs of each variant per round (default: the table's)"
    )
    parser.add_argument("--warmup", type=int, default=30, help="warm-up rounds")
    keys = ",".join(f.key for f in FRAMEWORKS)
    parser.add_argument("--only", default=keys, help=f"comma list of {keys} (all by default)")
    args = parser.parse_args(argv)
    rounds, runs, warmup = (1, 3, 1) if args.quick else (args.rounds, args.runs, args.warmup)
    chosen = set(args.only.split(","))
    frameworks = tuple(f for f in FRAMEWORKS if f.key in chosen)
    full = len(frameworks) == len(FRAMEWORKS)
    started, jiffies = time.monotonic(), _cpu_jiffies()
    print(f"machine: {_machine()}{' (quick mode)' if args.quick else ''}", flush=True)
    files = Path(tempfile.mkdtemp(prefix="bench-peers-files-"))
    (files / FILE_NAME).write_text(FILE_TEXT, encoding="utf-8")
    server = WorkloadProcess()
    drivers: list[Driver] = []
    try:
        print(f"workload server on {server.base_url}: {server.stats()}")
        drivers = [Driver(framework, server.base_url, files) for framework in frameworks]
        _wait_ready(drivers)
        if args.check:
            print(f"bench-peers-check: the server and {len(drivers)} drivers started")
            return 0
        results = [report.Measured(d.framework, d.ready) for d in drivers]
        for driver in drivers:
            driver.ask(f"warmup {warmup}")
        per_round = ", ".join(f"{d.framework.key} {runs or d.framework.runs}" for d in drivers)
        print(
            f"{rounds} rounds, after {warmup} warm-up rounds; runs of each variant per round:"
            f" {per_round}; variants alternating run by run, drivers in rotating order",
            flush=True,
        )
        for r in range(rounds):
            shift = r % len(drivers)
            for i in [*range(shift, len(drivers)), *range(shift)]:
                framework = drivers[i].framework
                n = runs or framework.runs
                before = server.stats()
                answer = drivers[i].ask(str(n))
                _check_server(server, before, n * len(framework.variants), framework.label)
                results[i].rounds.append(answer["samples"])
            print(f"  round {r + 1}/{rounds} done ({time.monotonic() - started:.0f} s)", flush=True)
        for driver, measured in zip(drivers, results, strict=True):
            measured.counts = driver.ask("counts")
            report.check_counts(measured)
    finally:
        for driver in drivers:
            driver.close()
        server.close()
        shutil.rmtree(files, ignore_errors=True)
    report.print_runs(results)
    by_key = {m.framework.key: m for m in results}
    report.print_costs(by_key)
    if full:
        report.print_goals(by_key)
    print(f"machine at the end: {_machine()}; {time.monotonic() - started:.0f} s in all")
    print(f"  meanwhile {_busy(jiffies)}")
    if full:
        print(report.line(by_key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
