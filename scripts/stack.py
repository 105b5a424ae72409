"""`make stack`: the telemetry stack as plain processes, one machine or agent and gateway tiers.

Machines here have no Docker engine, so `make stack` runs the programs docker-compose.yml
runs, as local processes: the Collector and Jaeger built from their Go modules
(scripts/build-collector.sh, scripts/build-jaeger.sh, cached), Prometheus from Debian, the
service from the project's environment. They read the repository's own configs; only
Prometheus gets a generated config, because its scrape targets hold ports. How each program
is started lives in scripts/processes/, which the tests and benchmarks share.

Usage (`make stack` / `make stack-down` / `make stack-status` call these):
    python -m scripts.stack up [--tiers N | --replicas N] [--postgres]
                                             build or reuse the binaries, start everything
                                             detached, wait until each is healthy, print URLs
    python -m scripts.stack down             stop exactly the processes whose pid files
                                             `up` wrote
    python -m scripts.stack status

`--tiers N` runs N hosts (service + agent Collector each) and N gateway Collectors instead of
the one Collector (docs/pipeline.md). The service stores its data where `DATABASE_URL` says
(PostgreSQL, say) when it is set, else in its embedded SQLite file; `--postgres` first starts
a PostgreSQL server of this machine's installation (scripts/processes/) on 127.0.0.1:5432
(`--postgres-port`) and hands its URL to the service, so every host of `--tiers` shares it.
`--replicas N` runs N service processes on one PostgreSQL (`DATABASE_URL` or `--postgres`: SQLite
is one process's) behind HAProxy (Debian's) on the service's usual port, 8001; the replicas
listen on 8011, 8012, ..., share one tool-workspace folder (.stack/workspaces) and are told
apart by their `service.instance.id` (docs/replicas.md).
State lives in `.stack/` (gitignored): pid files, logs, the Collectors' queues and audit
files, Prometheus' data, the PostgreSQL cluster, its password and its URL
(`.stack/postgres.url`, readable by its owner only). Printed URLs never show a password.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from scripts import processes as p

STACK_DIR = p.REPO / ".stack"


POSTGRES_URL_FILE = STACK_DIR / "postgres.url"
BALANCER_PORT = 8001
BALANCER_HEALTH_PORT = 8404
FIRST_REPLICA_PORT = 8011


def _already_running() -> bool:
    for pid_file in STACK_DIR.glob("*.pid"):
        record = p.PidRecord.read(pid_file)
        if record is not None and p.group_alive(record.pid):
            return True
        pid_file.unlink()  # left by a stack that died on its own
    return False


def _start_postgres(port: int) -> p.PostgresServer:
    """The stack's PostgreSQL: its cluster kept in .stack/ between runs, its full URL in a file
    only its owner reads (for `make serve` against it), never printed."""
    server = p.postgres_server(STACK_DIR, port=port, pid_file=STACK_DIR / "postgres.pid")
    print(f"stack: starting postgres (log .stack/{server.process.log_path.name})")
    server.start(timeout=120)
    POSTGRES_URL_FILE.touch(mode=0o600)
    POSTGRES_URL_FILE.write_text(server.url() + "\n")
    return server


def _single(
    args: argparse.Namespace, service_argv: list[str] | None, service_env: dict[str, str]
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
        service_extra_env=service_env,
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


def _replicated(
    args: argparse.Namespace, service_argv: list[str] | None, service_env: dict[str, str]
) -> tuple[list[p.ManagedProcess], dict[str, str]]:
    """The one-Collector stack, its service as ``args.replicas`` processes behind HAProxy."""
    assert service_argv is not None  # _up refuses --replicas with --no-service
    processes, urls = _single(args, None, service_env)
    workspaces = STACK_DIR / "workspaces"
    ports = p.Ports.default()
    replica_ports = [FIRST_REPLICA_PORT + i for i in range(args.replicas)]
    for i, port in enumerate(replica_ports):
        name = f"{p.SERVICE_NAME}-{i + 1}"
        env = {
            **p.service_env(port, STACK_DIR / name, ports.collector.otlp_grpc, instance=name),
            "AGENT_RUNTIME_WORKSPACE_DIR": str(workspaces),
            **service_env,
        }
        processes.append(
            p.service_process(
                name,
                port,
                env,
                STACK_DIR / f"{name}.log",
                argv=service_argv,
                pid_file=STACK_DIR / f"{name}.pid",
            )
        )
        urls[f"replica {i + 1}"] = f"http://127.0.0.1:{port}"
    processes.append(
        p.balancer_process(
            p.haproxy_binary(),
            BALANCER_PORT,
            replica_ports,
            STACK_DIR,
            health_port=BALANCER_HEALTH_PORT,
            pid_file=STACK_DIR / "balancer.pid",
        )
    )
    return processes, {f"{p.SERVICE_NAME} (HAProxy)": f"http://127.0.0.1:{BALANCER_PORT}", **urls}


def _tiered(
    args: argparse.Namespace, service_argv: list[str] | None, service_env: dict[str, str]
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
        service_extra_env=service_env,
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
    database_url = os.environ.get("DATABASE_URL", "").strip()
    if args.replicas and (args.tiers or args.no_service):
        print("stack: --replicas runs the service N times behind HAProxy on one Collector;")
        print("       it does not combine with --tiers or --no-service")
        return 2
    if args.replicas and not (args.postgres or database_url.startswith("postgres")):
        print("stack: replicas share their state in PostgreSQL: set DATABASE_URL=postgresql://...")
        print("       or POSTGRES=1 (a local server); SQLite is one process's")
        return 2
    if args.postgres and database_url:
        print("stack: DATABASE_URL is set and --postgres (POSTGRES=1) asks for a local server;")
        print("       unset one of them")
        return 2
    start = time.monotonic()
    # `up` runs inside the project's environment (`uv run`): its own entry point serves.
    service_argv = None if args.no_service else [str(p.service_entry_point()), "serve"]
    store: dict[str, str] = {}
    if args.postgres:
        try:
            server = _start_postgres(args.postgres_port)
        except (OSError, RuntimeError, TimeoutError) as exc:
            print(f"stack: postgres did not start: {exc}", file=sys.stderr)
            _down(args)
            return 1
        database_url = server.url()
        store["PostgreSQL"] = f"{p.redact_url(database_url)} (full URL: .stack/postgres.url)"
    elif database_url:
        store["store"] = f"DATABASE_URL={p.redact_url(database_url)}"
    elif service_argv is not None:
        store["store"] = "embedded SQLite in .stack/<service>/ (DATABASE_URL unset)"
    service_env = {"DATABASE_URL": database_url} if database_url else {}
    try:
        build = _tiered if args.tiers else _replicated if args.replicas else _single
        procs, urls = build(args, service_argv, service_env)
    except BaseException:  # a binary that does not build: no PostgreSQL left behind
        _down(args)
        raise
    urls |= store
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
    # PostgreSQL, started first, stops last, by the signal its pid file names (fast mode).
    pid_files = sorted(STACK_DIR.glob("*.pid"), key=lambda path: path.stat().st_mtime_ns)
    for pid_file in reversed(pid_files):
        record = p.PidRecord.read(pid_file)
        if record is not None and p.group_alive(record.pid):
            print(f"stack: stopping {pid_file.stem} (process group {record.pid})")
            p.stop_recorded(record, timeout=30)
        pid_file.unlink(missing_ok=True)
    return 0


def _status(_args: argparse.Namespace) -> int:
    pid_files = sorted(STACK_DIR.glob("*.pid"))
    if not pid_files:
        print("stack: not running")
    for pid_file in pid_files:
        record = p.PidRecord.read(pid_file)
        if record is None:
            print(f"  {pid_file.stem:16} (unreadable pid file)")
            continue
        state = "running" if p.group_alive(record.pid) else "gone"
        print(f"  {pid_file.stem:16} pid {record.pid} {state}")
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
    up.add_argument(
        "--replicas",
        type=int,
        default=0,
        choices=range(0, 10),
        metavar="N",
        help="N service processes on one PostgreSQL behind HAProxy (on port 8001)",
    )
    up.add_argument(
        "--postgres",
        action="store_true",
        help="start a local PostgreSQL and run the service on it (its DATABASE_URL)",
    )
    up.add_argument(
        "--postgres-port",
        type=int,
        default=p.POSTGRES_STACK_PORT,
        metavar="PORT",
        help=f"the local PostgreSQL's port (default {p.POSTGRES_STACK_PORT})",
    )
    sub.add_parser("down", help="stop what `up` started")
    sub.add_parser("status", help="show the recorded processes")
    args = parser.parse_args(argv)
    return {"up": _up, "down": _down, "status": _status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
