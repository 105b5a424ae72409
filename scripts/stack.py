"""The telemetry stack as plain processes: Collector, Jaeger, Prometheus and the service.

Machines here have no Docker engine, so `make stack` and the e2e tests run the same
programs docker-compose.yml runs, as local processes: the Collector and Jaeger built from
their Go modules (scripts/build-collector.sh, scripts/build-jaeger.sh, cached), Prometheus
from Debian, the service from the project's environment. All of them read the repository's
own configs (otel-collector.yaml, deploy/jaeger/config.yaml); only Prometheus gets a
generated config, because its scrape targets hold ports.

Usage (`make stack` / `make stack-down` call these):
    python scripts/stack.py up      build or reuse the binaries, start everything detached,
                                    wait until each is healthy, print the URLs
    python scripts/stack.py down    stop exactly the processes whose pid files `up` wrote
    python scripts/stack.py status

State lives in `.stack/` (gitignored): pid files, logs, the Collector's queue and audit
file, Prometheus' data. The e2e tests import this module for :class:`Ports`,
:class:`ManagedProcess` and the config builders, and run the processes as their children.
Standard library only, so it runs before the project's environment exists.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
COLLECTOR_CONFIG = REPO / "otel-collector.yaml"
TAIL_SAMPLING_OVERLAY = REPO / "deploy" / "collector" / "otel-collector.tail-sampling.yaml"
JAEGER_CONFIG = REPO / "deploy" / "jaeger" / "config.yaml"
STACK_DIR = REPO / ".stack"

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
) -> T:
    """Call ``probe`` until it returns something other than None/False, or fail at the deadline.

    Polling with a deadline is the only synchronisation used: no fixed sleeps.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if result is not None and result is not False:
                return result
        except Exception as exc:  # probes may fail while a process starts
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (local)
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class Ports:
    """Every port of the stack; :meth:`default` for `make stack`, :meth:`free` for tests."""

    otlp_grpc: int
    otlp_http: int
    collector_health: int
    collector_prometheus: int
    collector_telemetry: int
    jaeger_otlp_grpc: int
    jaeger_otlp_http: int
    jaeger_query_http: int
    jaeger_query_grpc: int
    jaeger_health: int
    prometheus: int
    service: int

    @classmethod
    def default(cls) -> Ports:
        return cls(4317, 4318, 13133, 8889, 8888, 14317, 14318, 16686, 16685, 13134, 9090, 8001)

    @classmethod
    def free(cls) -> Ports:
        ports: set[int] = set()
        while len(ports) < len(fields(cls)):
            ports.add(free_port())
        return cls(*sorted(ports))


def collector_env(ports: Ports, state_dir: Path, *, flush_interval: str = "1s") -> dict[str, str]:
    """The environment that points otel-collector.yaml at local ports and ``state_dir``."""
    return {
        "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports.otlp_grpc}",
        "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports.otlp_http}",
        "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports.collector_health}",
        "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports.collector_prometheus}",
        "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
        "OTELCOL_TELEMETRY_PORT": str(ports.collector_telemetry),
        "OTELCOL_JAEGER_ENDPOINT": f"127.0.0.1:{ports.jaeger_otlp_grpc}",
        "OTELCOL_STORAGE_DIR": str(state_dir / "queue"),
        "OTELCOL_AUDIT_FILE": str(audit_file(state_dir)),
        "OTELCOL_SPANMETRICS_FLUSH_INTERVAL": flush_interval,
        # Back within a couple of seconds once Jaeger returns after an outage.
        "OTELCOL_RETRY_MAX_INTERVAL": "2s",
    }


def audit_file(collector_state_dir: Path) -> Path:
    """Where the Collector's file exporter writes audit records (JSON lines)."""
    return collector_state_dir / "audit" / "audit.jsonl"


def jaeger_env(ports: Ports) -> dict[str, str]:
    return {
        "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports.jaeger_otlp_grpc}",
        "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports.jaeger_otlp_http}",
        "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{ports.jaeger_query_http}",
        "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{ports.jaeger_query_grpc}",
        "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{ports.jaeger_health}",
    }


def prometheus_config(ports: Ports, *, scrape_interval: str = "1s") -> str:
    """deploy/prometheus/prometheus.yml with local targets (same jobs, same honor_labels)."""
    return f"""# generated by scripts/stack.py from deploy/prometheus/prometheus.yml
global:
  scrape_interval: {scrape_interval}
  evaluation_interval: {scrape_interval}
scrape_configs:
  - job_name: otel-collector
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{ports.collector_prometheus}"]
  - job_name: otel-collector-self
    static_configs:
      - targets: ["127.0.0.1:{ports.collector_telemetry}"]
"""


def service_env(ports: Ports, data_dir: Path) -> dict[str, str]:
    """How the service is pointed at the local Collector (fast export intervals for tests)."""
    return {
        "PORT": str(ports.service),
        "AGENT_RUNTIME_DATA_DIR": str(data_dir),
        "OTEL_SERVICE_NAME": "agent-runtime",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{ports.otlp_grpc}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
    }


def build(script: str) -> Path:
    """Run scripts/build-<thing>.sh (progress on stderr) and return the binary it printed."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / script)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Path(result.stdout.strip().splitlines()[-1])


def prometheus_binary() -> Path:
    found = shutil.which("prometheus")
    if found is None:
        raise FileNotFoundError(
            "prometheus is not on PATH: run deploy/ci-prereqs.sh (apt-get install prometheus)"
        )
    return Path(found)


class ManagedProcess:
    """One program of the stack: started in its own process group, polled until healthy.

    ``pid_file`` (for `make stack`) records the group leader's pid so `down` stops exactly
    this process and its children; the tests keep the :class:`subprocess.Popen` instead.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        health_url: str,
        cwd: Path = REPO,
        pid_file: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.health_url = health_url
        self.cwd = cwd
        self.pid_file = pid_file
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self.pid_file is not None:
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            self.pid_file.write_text(f"{self.popen.pid}\n")

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_healthy(self, timeout: float = 60.0) -> None:
        def probe() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            return http_ok(self.health_url)

        try:
            wait_until(probe, timeout=timeout, what=f"{self.name} at {self.health_url}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- {self.log_path} ---\n{self.log_tail()}") from None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the process group, SIGKILL if still there at the deadline."""
        if self.popen is None:
            return
        _stop_group(
            self.popen.pid, timeout, lambda: self.popen is None or self.popen.poll() is not None
        )
        self.popen.wait(timeout=5)
        self.popen = None
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, no chance to flush: a crash."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        self.popen = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _stop_group(pid: int, timeout: float, gone: Callable[[], bool]) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        wait_until(gone, timeout=timeout, what=f"process group {pid} to exit")
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _group_gone(pgid: int) -> bool:
    return not _group_alive(pgid)


def _group_alive(pgid: int) -> bool:
    """True while any process of the group ``pgid`` (started by `up`) still runs."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields_ = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields: state, ppid, pgrp, ...; a zombie counts as gone.
        if int(fields_[2]) == pgid and fields_[0] != "Z":
            return True
    return False


def local_stack(
    ports: Ports,
    state_dir: Path,
    *,
    collector: Path,
    jaeger: Path,
    prometheus: Path,
    service_argv: Sequence[str] | None,
    pid_files: bool,
    collector_configs: Sequence[Path] = (COLLECTOR_CONFIG,),
) -> list[ManagedProcess]:
    """The stack's processes in start order (Jaeger, Collector, Prometheus, service)."""
    prom_dir = state_dir / "prometheus"
    prom_dir.mkdir(parents=True, exist_ok=True)
    prom_config = prom_dir / "prometheus.yml"
    prom_config.write_text(prometheus_config(ports))

    def pid(name: str) -> Path | None:
        return state_dir / f"{name}.pid" if pid_files else None

    config_args = [f"--config={path}" for path in collector_configs]
    procs = [
        ManagedProcess(
            "jaeger",
            [str(jaeger), f"--config={JAEGER_CONFIG}"],
            env=jaeger_env(ports),
            log_path=state_dir / "jaeger.log",
            health_url=f"http://127.0.0.1:{ports.jaeger_health}/status",
            pid_file=pid("jaeger"),
        ),
        ManagedProcess(
            "collector",
            [str(collector), *config_args],
            env=collector_env(ports, state_dir / "collector"),
            log_path=state_dir / "collector.log",
            health_url=f"http://127.0.0.1:{ports.collector_health}/",
            pid_file=pid("collector"),
        ),
        ManagedProcess(
            "prometheus",
            [
                str(prometheus),
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={prom_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{ports.prometheus}",
            ],
            env={},
            log_path=state_dir / "prometheus.log",
            health_url=f"http://127.0.0.1:{ports.prometheus}/-/ready",
            pid_file=pid("prometheus"),
        ),
    ]
    if service_argv is not None:
        procs.append(
            ManagedProcess(
                "agent-runtime",
                service_argv,
                env=service_env(ports, state_dir / "agent-runtime"),
                log_path=state_dir / "agent-runtime.log",
                health_url=f"http://127.0.0.1:{ports.service}/healthz",
                pid_file=pid("agent-runtime"),
            )
        )
    return procs


def urls(ports: Ports) -> dict[str, str]:
    return {
        "agent-runtime": f"http://127.0.0.1:{ports.service}",
        "Jaeger API": f"http://127.0.0.1:{ports.jaeger_query_http}/api/services",
        "Prometheus": f"http://127.0.0.1:{ports.prometheus}",
        "Collector OTLP": f"grpc 127.0.0.1:{ports.otlp_grpc}, http 127.0.0.1:{ports.otlp_http}",
        "Collector health": f"http://127.0.0.1:{ports.collector_health}/",
    }


def _up(args: argparse.Namespace) -> int:
    for pid_file in STACK_DIR.glob("*.pid"):
        recorded = pid_file.read_text().strip()
        if recorded.isdigit() and int(recorded) > 1 and _group_alive(int(recorded)):
            print("stack: already running (pid files in .stack/); `make stack-down` first")
            return 1
        pid_file.unlink()  # left by a stack that died on its own
    start = time.monotonic()
    ports = Ports.default()
    collector, jaeger = build("build-collector.sh"), build("build-jaeger.sh")
    # stack.py runs inside the project's environment (`uv run`): its own entry point serves.
    service = str(Path(sys.executable).with_name("agent-runtime"))
    service_argv = None if args.no_service else [service, "serve"]
    configs = (
        [COLLECTOR_CONFIG, TAIL_SAMPLING_OVERLAY] if args.tail_sampling else [COLLECTOR_CONFIG]
    )
    procs = local_stack(
        ports,
        STACK_DIR,
        collector=collector,
        jaeger=jaeger,
        prometheus=prometheus_binary(),
        service_argv=service_argv,
        pid_files=True,
        collector_configs=configs,
    )
    for proc in procs:
        print(f"stack: starting {proc.name} (log .stack/{proc.log_path.name})")
        proc.start()
        try:
            proc.wait_healthy(timeout=120)
        except (TimeoutError, RuntimeError) as exc:
            print(f"stack: {proc.name} did not become healthy: {exc}", file=sys.stderr)
            _down(args)
            return 1
    print(f"stack: up in {time.monotonic() - start:.1f} s")
    for name, url in urls(ports).items():
        if name != "agent-runtime" or service_argv is not None:
            print(f"  {name:18} {url}")
    print(f"  {'audit file':18} {audit_file(STACK_DIR / 'collector')}")
    return 0


def _down(_args: argparse.Namespace) -> int:
    for pid_file in sorted(STACK_DIR.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
        except ValueError:
            pid_file.unlink()
            continue
        if pid > 1 and _group_alive(pid):
            print(f"stack: stopping {pid_file.stem} (process group {pid})")
            _stop_group(pid, 15.0, functools.partial(_group_gone, pid))
        pid_file.unlink(missing_ok=True)
    return 0


def _status(_args: argparse.Namespace) -> int:
    pid_files = sorted(STACK_DIR.glob("*.pid"))
    if not pid_files:
        print("stack: not running")
    for pid_file in pid_files:
        pid = int(pid_file.read_text().strip())
        state = "running" if _group_alive(pid) else "gone"
        print(f"  {pid_file.stem:14} pid {pid} {state}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build or reuse the binaries and start the stack")
    up.add_argument("--no-service", action="store_true", help="only the telemetry backends")
    up.add_argument("--tail-sampling", action="store_true", help="add the tail-sampling overlay")
    sub.add_parser("down", help="stop what `up` started")
    sub.add_parser("status", help="show the recorded processes")
    args = parser.parse_args(argv)
    return {"up": _up, "down": _down, "status": _status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
