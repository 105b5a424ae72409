"""`make stack`: the telemetry stack as plain processes, one machine or agent and gateway tiers.

Machines here have no Docker engine, so `make stack` runs the programs docker-compose.yml
runs, as local processes: the Collector and Jaeger built from their Go modules
(scripts/build-collector.sh, scripts/build-jaeger.sh, cached), Prometheus from Debian, the
service from the project's environment. They read the repository's own configs; only
Prometheus gets a generated config, because its scrape targets hold ports. How each program
is started lives in scripts/processes.py, which the tests and benchmarks share.

Usage (`make stack` / `make stack-down` / `make stack-status` call these):
    python -m scripts.stack up [--tiers N]   build or reuse the binaries, start everything
                                             detached, wait until each is healthy, print URLs
    python -m scripts.stack down             stop exactly the processes whose pid files
                                             `up` wrote
    python -m scripts.stack status

`--tiers N` runs N hosts (service + agent Collector each) and N gateway Collectors instead of
the one Collector (docs/pipeline.md). State lives in `.stack/` (gitignored): pid files, logs,
the Collectors' queues and audit files, Prometheus' data.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from scripts import processes as p

STACK_DIR = p.REPO / ".stack"


def _already_running() -> bool:
    for pid_file in STACK_DIR.glob("*.pid"):
        recorded = pid_file.read_text().strip()
        if recorded.isdigit() and int(recorded) > 1 and p.group_alive(int(recorded)):
            return True
        pid_file.unlink()  # left by a stack that died on its own
    return False


def _single(
    args: argparse.Namespace, service_argv: list[str] | None
) -> tuple[list[p.ManagedProcess], dict[str, str]]:
    ports = p.Ports.default()
    configs = [p.COLLECTOR_CONFIG] + ([p.TAIL_SAMPLING_OVERLAY] if args.tail_sampling else [])
    stack = p.single_stack(
        ports,
        STACK_DIR,
        collector=p.build("build-collector.sh"),
        jaeger=p.build("build-jaeger.sh"),
        prometheus=p.prometheus_binary(),
        service_argv=service_argv,
        pid_files=True,
        collector_configs=configs,
    )
    urls = {
        "Jaeger API": f"http://127.0.0.1:{ports.jaeger.query_http}/api/services",
        "Prometheus": f"http://127.0.0.1:{ports.prometheus}",
        "Collector OTLP": f"grpc 127.0.0.1:{ports.collector.otlp_grpc}, "
        f"http 127.0.0.1:{ports.collector.otlp_http}",
        "audit file": str(stack.audit_file),
    }
    if service_argv is not None:
        urls = {p.SERVICE_NAME: f"http://127.0.0.1:{ports.service}", **urls}
    return stack.processes, urls


def _tiered(
    args: argparse.Namespace, service_argv: list[str] | None
) -> tuple[list[p.ManagedProcess], dict[str, str]]:
    ports = p.TierPorts.default(args.tiers)
    stack = p.tiered_stack(
        ports,
        STACK_DIR,
        collector=p.build("build-collector.sh"),
        jaeger=p.build("build-jaeger.sh"),
        prometheus=p.prometheus_binary(),
        service_argv=service_argv,
        pid_files=True,
    )
    urls: dict[str, str] = {}
    if service_argv is not None:
        for i, port in enumerate(ports.services):
            urls[f"{p.SERVICE_NAME}-{i + 1}"] = f"http://127.0.0.1:{port}"
    urls["Jaeger API"] = f"http://127.0.0.1:{ports.jaeger.query_http}/api/services"
    urls["Prometheus"] = f"http://127.0.0.1:{ports.prometheus}"
    for i, agent in enumerate(ports.agents):
        urls[f"agent-{i + 1} OTLP"] = f"grpc 127.0.0.1:{agent.otlp_grpc}"
    for j, gateway in enumerate(ports.gateways):
        urls[f"gateway-{j + 1} OTLP"] = f"grpc 127.0.0.1:{gateway.otlp_grpc}"
    for i, path in enumerate(stack.audit_files()):
        urls[f"audit file {i + 1}"] = str(path)
    return stack.processes, urls


def _up(args: argparse.Namespace) -> int:
    if _already_running():
        print("stack: already running (pid files in .stack/); `make stack-down` first")
        return 1
    if args.tiers and args.tail_sampling:
        print("stack: --tiers has its own tail sampling (the gateways); drop --tail-sampling")
        return 2
    start = time.monotonic()
    # `up` runs inside the project's environment (`uv run`): its own entry point serves.
    service_argv = None if args.no_service else [str(p.service_entry_point()), "serve"]
    procs, urls = (_tiered if args.tiers else _single)(args, service_argv)
    for proc in procs:
        print(f"stack: starting {proc.name} (log .stack/{proc.log_path.name})")
        try:
            p.start_all([proc], timeout=120)
        except (TimeoutError, RuntimeError) as exc:
            print(f"stack: {proc.name} did not become healthy: {exc}", file=sys.stderr)
            _down(args)
            return 1
    print(f"stack: up in {time.monotonic() - start:.1f} s")
    for name, url in urls.items():
        print(f"  {name:18} {url}")
    return 0


def _down(_args: argparse.Namespace) -> int:
    # In the reverse of the start order (the pid files were written as each one started):
    # the services first, so that their last telemetry still finds a Collector.
    pid_files = sorted(STACK_DIR.glob("*.pid"), key=lambda path: path.stat().st_mtime_ns)
    for pid_file in reversed(pid_files):
        try:
            pid = int(pid_file.read_text().strip())
        except ValueError:
            pid_file.unlink()
            continue
        if pid > 1 and p.group_alive(pid):
            print(f"stack: stopping {pid_file.stem} (process group {pid})")
            p.stop_group(pid)
        pid_file.unlink(missing_ok=True)
    return 0


def _status(_args: argparse.Namespace) -> int:
    pid_files = sorted(STACK_DIR.glob("*.pid"))
    if not pid_files:
        print("stack: not running")
    for pid_file in pid_files:
        pid = int(pid_file.read_text().strip())
        state = "running" if p.group_alive(pid) else "gone"
        print(f"  {pid_file.stem:16} pid {pid} {state}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.stack", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build or reuse the binaries and start the stack")
    up.add_argument("--no-service", action="store_true", help="only the telemetry backends")
    up.add_argument("--tail-sampling", action="store_true", help="add the tail-sampling overlay")
    up.add_argument(
        "--tiers",
        type=int,
        default=0,
        metavar="N",
        help="N hosts (service + agent Collector) and N gateway Collectors",
    )
    sub.add_parser("down", help="stop what `up` started")
    sub.add_parser("status", help="show the recorded processes")
    args = parser.parse_args(argv)
    return {"up": _up, "down": _down, "status": _status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
