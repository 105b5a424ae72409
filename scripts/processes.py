"""Start, watch and stop agent-runtime, its PostgreSQL store and the programs of its
telemetry pipeline.

Every caller that runs them as processes uses this module: `make stack` (scripts/stack.py),
the e2e tests (tests/e2e), the reliability tests (tests/reliability/support.py), the service
test that needs a process of its own (tests/service/test_collector_down.py), the tests'
PostgreSQL fixtures (tests/support/postgres.py) and the benchmarks (bench/service.py); a port
that nothing listens on comes from :func:`free_port` for all of them. Each
program is a :class:`ManagedProcess`: started in its own process group with its environment
and log file, polled on a health URL until a deadline, stopped with SIGTERM (or the signal
its program asks for) and, past a deadline, SIGKILL. The builders below make the process of
each program (the service, the Collector in any of its roles, Jaeger, Prometheus, HAProxy in
front of service replicas, a PostgreSQL server: :func:`postgres_server`) and the two stacks
made of them: one Collector (:func:`single_stack`), or agent and gateway tiers
(:func:`tiered_stack`, docs/pipeline.md).

Standard library only, so that `make stack-down` runs it before the project's environment
exists. Importable as ``scripts.processes`` from the repository root: pytest puts the root
on ``sys.path`` (tests/ is a package), bench/ runs with ``PYTHONPATH=src:.``, and the stack
runs as ``python -m scripts.stack``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
COLLECTOR_CONFIG = REPO / "otel-collector.yaml"
TAIL_SAMPLING_OVERLAY = REPO / "deploy" / "collector" / "otel-collector.tail-sampling.yaml"
AGENT_CONFIG = REPO / "deploy" / "collector" / "otel-agent.yaml"
AGENT_DNS_OVERLAY = REPO / "deploy" / "collector" / "otel-agent.dns.yaml"
GATEWAY_CONFIG = REPO / "deploy" / "collector" / "otel-gateway.yaml"
JAEGER_CONFIG = REPO / "deploy" / "jaeger" / "config.yaml"
ALERT_RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
SERVICE_NAME = "agent-runtime"

T = TypeVar("T")


# --- waiting -------------------------------------------------------------------------------


class ProcessExited(RuntimeError):
    """The program being waited for exited: waiting longer cannot help."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
) -> T:
    """Call ``probe`` until it returns something other than None/False, or fail at the deadline.

    Polling with a deadline is the only synchronisation used: no fixed sleeps. A probe that
    raises is asked again (a process that starts refuses connections), unless it raises
    :class:`ProcessExited`.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if result is not None and result is not False:
                return result
        except ProcessExited:
            raise
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


class PortPool:
    """Free ports, each handed out once, so that one stack's programs never share one."""

    def __init__(self) -> None:
        self._given: set[int] = set()

    def take(self) -> int:
        while True:
            port = free_port()
            if port not in self._given:
                self._given.add(port)
                return port


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (local)
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


# --- one process -----------------------------------------------------------------------------


class ManagedProcess:
    """One program: started in its own process group, polled until healthy, stopped.

    ``env`` is added to this process's environment, or, with ``inherit_env=False``, is the
    whole environment (callers that must keep the outer shell's OTEL_* settings out).
    stdout goes to ``log_path``, stderr too unless ``stderr_path`` names its own file.
    The logs are appended to (a restarted program keeps its history) unless
    ``append_logs=False``. ``pid_file`` (for `make stack`) records the group leader's pid and
    how to stop it (:class:`PidRecord`), so that `down` stops exactly this process and its
    children, the way the program asks to be stopped.

    Most programs are stopped by SIGTERM to their whole group. A server that manages its own
    children (PostgreSQL) is stopped by ``stop_signal`` to the leader alone
    (``stop_leader_only``): the leader tells its children. ``probe`` replaces the HTTP check
    of ``health_url`` for a program that speaks no HTTP (``health_url`` then only names what
    is probed in messages). ``user`` runs the program as that OS user (its own group, no
    supplementary groups), for a program that refuses to run as root.
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
        inherit_env: bool = True,
        stderr_path: Path | None = None,
        append_logs: bool = True,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_leader_only: bool = False,
        probe: Callable[[], bool] | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.stderr_path = stderr_path
        self.health_url = health_url
        self.cwd = cwd
        self.pid_file = pid_file
        self.inherit_env = inherit_env
        self.append_logs = append_logs
        self.stop_signal = stop_signal
        self.stop_leader_only = stop_leader_only
        self.probe = probe
        self.user = user
        self.popen: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        mode = "ab" if self.append_logs else "wb"
        with contextlib.ExitStack() as files:
            stdout = files.enter_context(self.log_path.open(mode))
            stderr = (
                files.enter_context(self.stderr_path.open(mode))
                if self.stderr_path is not None
                else subprocess.STDOUT
            )
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                **run_as(self.user),
            )
        self.returncode = None
        if self.pid_file is not None:
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            record = PidRecord(self.popen.pid, self.stop_signal, self.stop_leader_only)
            self.pid_file.write_text(record.text())

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_healthy(self, timeout: float = 60.0, interval: float = 0.2) -> None:
        """Poll the health URL until it answers 2xx; fail at once if the process exits."""

        def probe() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise ProcessExited(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            if self.probe is not None:
                return self.probe()
            return http_ok(self.health_url, timeout=max(interval, 1.0))

        try:
            wait_until(
                probe, timeout=timeout, what=f"{self.name} at {self.health_url}", interval=interval
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- {self.log_path} ---\n{self.log_tail()}") from None

    def stop(self, timeout: float = 15.0, *, sig: signal.Signals | None = None) -> int | None:
        """The stop signal (``sig``, else :attr:`stop_signal`) to the process group, or to the
        leader alone; SIGKILL to the group if the leader is still there at the deadline.

        Returns the exit code (None when it was never started). The leader is waited for
        directly, not polled, so a caller timing the shutdown measures the process itself.
        """
        if self.popen is None:
            return self.returncode
        if self.popen.poll() is None:
            stop_signal = self.stop_signal if sig is None else sig
            if self.stop_leader_only:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.popen.pid, stop_signal)
            else:
                _signal_group(self.popen.pid, stop_signal)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        return self._forget()

    def kill(self) -> int | None:
        """SIGKILL to the process group, no chance to flush: a crash."""
        if self.popen is None:
            return self.returncode
        if self.popen.poll() is None:  # once reaped, its pid may belong to someone else
            _signal_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        return self._forget()

    def _forget(self) -> int | None:
        assert self.popen is not None
        self.returncode = self.popen.returncode
        self.popen = None
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
        return self.returncode

    def log_tail(self, lines: int = 40) -> str:
        tails = []
        for path in (self.log_path, self.stderr_path):
            if path is None:
                continue
            try:
                text = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            except OSError:
                text = "(no log)"
            tails.append(text if self.stderr_path is None else f"--- {path.name} ---\n{text}")
        return "\n".join(tails)


def start_all(processes: Iterable[ManagedProcess], *, timeout: float = 90.0) -> None:
    """Start each process in order and wait until it is healthy before the next one.

    On a failure, the ones already started are stopped again before the error propagates.
    """
    started: list[ManagedProcess] = []
    try:
        for proc in processes:
            proc.start()
            started.append(proc)
            proc.wait_healthy(timeout=timeout)
    except BaseException:
        stop_all(started)
        raise


def stop_all(processes: Sequence[ManagedProcess]) -> None:
    """Stop in the reverse of the start order (the service before its Collector, ...)."""
    for proc in reversed(processes):
        proc.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """True while any process of the group ``pgid`` still runs (a zombie counts as gone)."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields after the command: state, ppid, pgrp, ...
        if int(stat[2]) == pgid and stat[0] != "Z":
            return True
    return False


@dataclass(frozen=True)
class PidRecord:
    """What a pid file of `make stack` holds: the group leader, and how it asks to be stopped.

    The file's first line is the pid; a second line ``<SIGNAL> leader`` or ``<SIGNAL> group``
    is written only when the program is not stopped by SIGTERM to its group, so the files of
    the other programs keep their one-line form.
    """

    pid: int
    stop_signal: signal.Signals = signal.SIGTERM
    leader_only: bool = False

    def text(self) -> str:
        if self.stop_signal == signal.SIGTERM and not self.leader_only:
            return f"{self.pid}\n"
        target = "leader" if self.leader_only else "group"
        return f"{self.pid}\n{self.stop_signal.name} {target}\n"

    @classmethod
    def read(cls, path: Path) -> PidRecord | None:
        """The record in ``path``; None when it is missing or not one (nothing to stop)."""
        try:
            lines = path.read_text().split("\n")
        except OSError:
            return None
        first = lines[0].strip()
        if not first.isdigit() or int(first) <= 1:
            return None
        how = lines[1].split() if len(lines) > 1 else []
        if not how:
            return cls(int(first))
        try:
            stop_signal = signal.Signals[how[0]]
        except KeyError:
            return None
        return cls(int(first), stop_signal, how[1:] == ["leader"])


def stop_recorded(record: PidRecord, timeout: float = 15.0) -> None:
    """Stop a process group that is not our child (`make stack-down`) as its record says,
    then SIGKILL the group if any of it is still there at the deadline."""
    if record.leader_only:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(record.pid, record.stop_signal)
    else:
        _signal_group(record.pid, record.stop_signal)
    try:
        wait_until(
            lambda: not group_alive(record.pid), timeout=timeout, what=f"process group {record.pid}"
        )
    except TimeoutError:
        _signal_group(record.pid, signal.SIGKILL)


def run_as(user: str | None) -> dict[str, Any]:
    """The keyword arguments of :class:`subprocess.Popen` that run a program as ``user`` (its
    own uid and primary group, no supplementary groups); none for ``None`` (as we are)."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


# --- the programs' binaries ------------------------------------------------------------------


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


def haproxy_binary() -> Path:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if found is None:
        raise FileNotFoundError(
            "haproxy is not on PATH: run deploy/ci-prereqs.sh (apt-get install haproxy)"
        )
    return Path(found)


def service_entry_point() -> Path:
    """`agent-runtime`, the console script beside the running interpreter (`uv run`)."""
    return Path(sys.executable).with_name("agent-runtime")


# --- ports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectorPorts:
    """One Collector: OTLP in, health check, its Prometheus exporter, its own metrics."""

    otlp_grpc: int
    otlp_http: int
    health: int
    prometheus: int
    telemetry: int

    @classmethod
    def free(cls, pool: PortPool) -> CollectorPorts:
        return cls(*(pool.take() for _ in range(5)))

    @classmethod
    def numbered(cls, grpc: int, health: int, telemetry: int) -> CollectorPorts:
        """HTTP beside gRPC, the exporter beside the Collector's own metrics."""
        return cls(grpc, grpc + 1, health, telemetry + 1, telemetry)


@dataclass(frozen=True)
class JaegerPorts:
    otlp_grpc: int
    otlp_http: int
    query_http: int
    query_grpc: int
    health: int

    @classmethod
    def default(cls) -> JaegerPorts:
        return cls(14317, 14318, 16686, 16685, 13134)

    @classmethod
    def free(cls, pool: PortPool) -> JaegerPorts:
        return cls(*(pool.take() for _ in range(5)))


@dataclass(frozen=True)
class Ports:
    """Every port of the single-Collector stack: :meth:`default` for `make stack`,
    :meth:`free` for tests."""

    collector: CollectorPorts
    jaeger: JaegerPorts
    prometheus: int
    service: int

    @classmethod
    def default(cls) -> Ports:
        return cls(CollectorPorts(4317, 4318, 13133, 8889, 8888), JaegerPorts.default(), 9090, 8001)

    @classmethod
    def free(cls, pool: PortPool | None = None) -> Ports:
        pool = pool or PortPool()
        return cls(CollectorPorts.free(pool), JaegerPorts.free(pool), pool.take(), pool.take())


@dataclass(frozen=True)
class TierPorts:
    """Every port of the tiered stack: service ``i`` sends to agent ``i``; the agents route
    to every gateway."""

    agents: tuple[CollectorPorts, ...]
    gateways: tuple[CollectorPorts, ...]
    jaeger: JaegerPorts
    prometheus: int
    services: tuple[int, ...]

    @classmethod
    def default(cls, hosts: int, gateways: int | None = None) -> TierPorts:
        """Agent ``i`` on 4317+10i (gRPC), the gateways on 4417+10j, services on 8001+i."""
        gateways = hosts if gateways is None else gateways
        if not 1 <= hosts <= 9 or not 1 <= gateways <= 9:
            raise ValueError("between 1 and 9 hosts and gateways")
        return cls(
            tuple(
                CollectorPorts.numbered(4317 + 10 * i, 13133 + 10 * i, 8888 + 10 * i)
                for i in range(hosts)
            ),
            tuple(
                CollectorPorts.numbered(4417 + 10 * j, 13233 + 10 * j, 8988 + 10 * j)
                for j in range(gateways)
            ),
            JaegerPorts.default(),
            9090,
            tuple(8001 + i for i in range(hosts)),
        )

    @classmethod
    def free(cls, hosts: int, gateways: int, pool: PortPool | None = None) -> TierPorts:
        pool = pool or PortPool()
        return cls(
            tuple(CollectorPorts.free(pool) for _ in range(hosts)),
            tuple(CollectorPorts.free(pool) for _ in range(gateways)),
            JaegerPorts.free(pool),
            pool.take(),
            tuple(pool.take() for _ in range(hosts)),
        )


# --- environments --------------------------------------------------------------------------


def collector_env(
    ports: CollectorPorts,
    state_dir: Path,
    *,
    jaeger: JaegerPorts | None = None,
    flush_interval: str = "1s",
) -> dict[str, str]:
    """What points a Collector config (any role) at local ports and at ``state_dir``."""
    env = {
        "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports.otlp_grpc}",
        "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports.otlp_http}",
        "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports.health}",
        "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports.prometheus}",
        "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
        "OTELCOL_TELEMETRY_PORT": str(ports.telemetry),
        "OTELCOL_STORAGE_DIR": str(state_dir / "queue"),
        "OTELCOL_AUDIT_FILE": str(audit_file(state_dir)),
        "OTELCOL_SPANMETRICS_FLUSH_INTERVAL": flush_interval,
        # Back within a couple of seconds once a backend returns after an outage.
        "OTELCOL_RETRY_MAX_INTERVAL": "2s",
        "OTELCOL_GATEWAY_RETRY_MAX_INTERVAL": "1s",
    }
    if jaeger is not None:
        env["OTELCOL_JAEGER_ENDPOINT"] = f"127.0.0.1:{jaeger.otlp_grpc}"
    return env


def agent_env(
    ports: CollectorPorts, state_dir: Path, gateways: Sequence[CollectorPorts]
) -> dict[str, str]:
    """An agent Collector routing to ``gateways`` by its static resolver."""
    endpoints = ", ".join(f"127.0.0.1:{gateway.otlp_grpc}" for gateway in gateways)
    return {**collector_env(ports, state_dir), "OTELCOL_GATEWAY_ENDPOINTS": f"[{endpoints}]"}


def audit_file(collector_state_dir: Path) -> Path:
    """Where a Collector's file exporter writes audit records (JSON lines)."""
    return collector_state_dir / "audit" / "audit.jsonl"


def jaeger_env(ports: JaegerPorts) -> dict[str, str]:
    return {
        "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports.otlp_grpc}",
        "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports.otlp_http}",
        "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{ports.query_http}",
        "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{ports.query_grpc}",
        "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{ports.health}",
    }


def service_env(
    port: int, data_dir: Path, otlp_grpc_port: int, *, instance: str | None = None
) -> dict[str, str]:
    """How the service is pointed at a local Collector (fast export intervals for tests)."""
    env = {
        "PORT": str(port),
        "AGENT_RUNTIME_DATA_DIR": str(data_dir),
        "OTEL_SERVICE_NAME": SERVICE_NAME,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_grpc_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
    }
    if instance is not None:
        # Replicas are told apart in Prometheus by their instance label.
        env["OTEL_RESOURCE_ATTRIBUTES"] = f"service.instance.id={instance}"
    return env


@dataclass(frozen=True)
class ScrapeTarget:
    """One Collector for Prometheus: its exporter (None for a gateway) and its own metrics."""

    name: str
    role: str
    ports: CollectorPorts
    exports_metrics: bool = True


def prometheus_config(
    targets: Sequence[ScrapeTarget],
    *,
    rule_files: Sequence[Path] = (ALERT_RULES,),
    scrape_interval: str = "1s",
) -> str:
    """deploy/prometheus/prometheus.yml with local targets (same jobs, same honor_labels)."""
    exporters = "".join(
        f'      - targets: ["127.0.0.1:{t.ports.prometheus}"]\n'
        f"        labels: {{collector: {t.name}, collector_role: {t.role}}}\n"
        for t in targets
        if t.exports_metrics
    )
    own = "".join(
        f'      - targets: ["127.0.0.1:{t.ports.telemetry}"]\n'
        f"        labels: {{collector: {t.name}, collector_role: {t.role}}}\n"
        for t in targets
    )
    rules = "".join(f'  - "{path}"\n' for path in rule_files)
    return f"""# generated by scripts/processes.py from deploy/prometheus/prometheus.yml
global:
  scrape_interval: {scrape_interval}
  evaluation_interval: {scrape_interval}
rule_files:
{rules}scrape_configs:
  - job_name: otel-collector
    honor_labels: true
    static_configs:
{exporters}  - job_name: otel-collector-self
    static_configs:
{own}"""


# --- the programs ------------------------------------------------------------------------------


def jaeger_process(
    binary: Path, ports: JaegerPorts, state_dir: Path, *, pid_file: Path | None = None
) -> ManagedProcess:
    return ManagedProcess(
        "jaeger",
        [str(binary), f"--config={JAEGER_CONFIG}"],
        env=jaeger_env(ports),
        log_path=state_dir / "jaeger.log",
        health_url=f"http://127.0.0.1:{ports.health}/status",
        pid_file=pid_file,
    )


def collector_process(
    name: str,
    binary: Path,
    configs: Sequence[Path],
    env: Mapping[str, str],
    ports: CollectorPorts,
    state_dir: Path,
    *,
    pid_file: Path | None = None,
    extra_args: Sequence[str] = (),
) -> ManagedProcess:
    """A Collector of any role: the configs are merged in order (`--config` repeated);
    ``extra_args`` such as `--feature-gates=...` follow them."""
    return ManagedProcess(
        name,
        [str(binary), *(f"--config={path}" for path in configs), *extra_args],
        env=env,
        log_path=state_dir / f"{name}.log",
        health_url=f"http://127.0.0.1:{ports.health}/",
        pid_file=pid_file,
    )


def prometheus_process(
    binary: Path, port: int, config: str, state_dir: Path, *, pid_file: Path | None = None
) -> ManagedProcess:
    """Prometheus with the given config, the alert rules it names, and exemplar storage."""
    prom_dir = state_dir / "prometheus"
    prom_dir.mkdir(parents=True, exist_ok=True)
    config_path = prom_dir / "prometheus.yml"
    config_path.write_text(config)
    return ManagedProcess(
        "prometheus",
        [
            str(binary),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={prom_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # Exemplars (trace ids on histogram buckets) are kept only with this flag.
            "--enable-feature=exemplar-storage",
        ],
        env={},
        log_path=state_dir / "prometheus.log",
        health_url=f"http://127.0.0.1:{port}/-/ready",
        pid_file=pid_file,
    )


def service_process(
    name: str,
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    *,
    argv: Sequence[str] | None = None,
    cwd: Path = REPO,
    health_path: str = "/healthz",
    inherit_env: bool = True,
    stderr_path: Path | None = None,
    append_logs: bool = True,
    pid_file: Path | None = None,
) -> ManagedProcess:
    """`agent-runtime serve` (or ``argv``) listening on ``port`` (``PORT`` in ``env``)."""
    return ManagedProcess(
        name,
        argv if argv is not None else [str(service_entry_point()), "serve"],
        env={**env, "PORT": str(port)},
        log_path=log_path,
        health_url=f"http://127.0.0.1:{port}{health_path}",
        cwd=cwd,
        inherit_env=inherit_env,
        stderr_path=stderr_path,
        append_logs=append_logs,
        pid_file=pid_file,
    )


def balancer_config(
    port: int,
    replicas: Sequence[int],
    *,
    health_port: int,
    stream_timeout_s: float = 330.0,
) -> str:
    """HAProxy in front of service replicas on ``replicas`` (ports on 127.0.0.1).

    Each replica is checked on /readyz every second and taken out after two failures, back
    after one success; a request goes to the replica with the fewest open connections (SSE
    streams are long-lived, so counting them balances better than taking turns). Responses
    are streamed as they come (HTTP mode does not buffer them), and an idle stream, one
    waiting for its human, may stay silent for ``stream_timeout_s``: keep it above the
    approval timeout. ``health_port`` answers /healthz 200 while any replica is up, 503
    otherwise.
    """
    servers = "".join(
        f"    server replica-{i + 1} 127.0.0.1:{replica} check\n"
        for i, replica in enumerate(replicas)
    )
    stream_ms = int(stream_timeout_s * 1000)
    return f"""# generated by scripts/processes.py (balancer_config)
global
    maxconn 4096
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlognull
    # A replica that refuses the connection (stopping, not yet seen down by the checks):
    # the request goes to another one.
    option redispatch
    retries 2
    timeout connect 2s
    timeout http-request 10s
    timeout client {stream_ms}ms
    timeout server {stream_ms}ms
    timeout tunnel {stream_ms}ms

frontend agent-runtime
    bind 127.0.0.1:{port}
    default_backend replicas

frontend health
    bind 127.0.0.1:{health_port}
    monitor-uri /healthz
    monitor fail if {{ nbsrv(replicas) lt 1 }}

backend replicas
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
{servers}"""


def balancer_process(
    binary: Path,
    port: int,
    replicas: Sequence[int],
    state_dir: Path,
    *,
    health_port: int,
    stream_timeout_s: float = 330.0,
    pid_file: Path | None = None,
) -> ManagedProcess:
    """HAProxy (Debian's) in the foreground with :func:`balancer_config`; start it after the
    replicas, before their clients."""
    config_dir = state_dir / "balancer"
    config_dir.mkdir(parents=True, exist_ok=True)
    config_path = config_dir / "haproxy.cfg"
    config_path.write_text(
        balancer_config(port, replicas, health_port=health_port, stream_timeout_s=stream_timeout_s)
    )
    return ManagedProcess(
        "balancer",
        [str(binary), "-db", "-f", str(config_path)],
        env={},
        log_path=state_dir / "balancer.log",
        health_url=f"http://127.0.0.1:{health_port}/healthz",
        pid_file=pid_file,
    )


# --- PostgreSQL --------------------------------------------------------------------------------

POSTGRES_INSTALL_ROOT = Path("/usr/lib/postgresql")
# The programs of an installation this module runs (Debian: postgresql-NN and its client).
POSTGRES_TOOLS = ("initdb", "postgres", "pg_isready", "psql")
# initdb and postgres refuse to run as root; as root they run as the user Debian's package makes.
POSTGRES_OS_USER = "postgres"
POSTGRES_ROLE = "agent_runtime"
POSTGRES_DATABASE = "agent_runtime"
POSTGRES_STACK_PORT = 5432
# pg_ctl's shutdown modes, as the signal each sends to the postmaster.
POSTGRES_STOP_SIGNALS = {
    "smart": signal.SIGTERM,  # waits for every client to disconnect
    "fast": signal.SIGINT,  # ends the sessions, rolls back open transactions, checkpoints
    "immediate": signal.SIGQUIT,  # no checkpoint: the next start runs crash recovery
}
# sun_path holds 108 bytes; the socket is <dir>/.s.PGSQL.<port>.
_SOCKET_PATH_MAX = 107


def postgres_bindir(root: Path = POSTGRES_INSTALL_ROOT) -> Path:
    """The newest ``<root>/<major>/bin`` that holds the server and its client (Debian keeps
    them off PATH); else the directory of an ``initdb`` on PATH that does."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for bindir in root.glob("*/bin"):
        version = bindir.parent.name.split(".")  # "16", or "9.6" before PostgreSQL 10
        if all(part.isdigit() for part in version) and _has_postgres_tools(bindir):
            found.append((tuple(int(part) for part in version), bindir))
    if found:
        return max(found)[1]
    on_path = shutil.which("initdb")
    if on_path is not None and _has_postgres_tools(Path(on_path).resolve().parent):
        return Path(on_path).resolve().parent
    raise FileNotFoundError(
        f"no PostgreSQL server under {root}/*/bin nor on PATH: run deploy/ci-prereqs.sh "
        "(apt-get install postgresql)"
    )


def _has_postgres_tools(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in POSTGRES_TOOLS)


def postgres_os_user() -> str | None:
    """Who runs initdb and the server: ``postgres`` when we are root, else we (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        raise FileNotFoundError(
            f"running as root, and there is no {POSTGRES_OS_USER!r} user to run PostgreSQL as "
            "(initdb refuses root; Debian's postgresql package creates that user)"
        ) from None
    return POSTGRES_OS_USER


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: what may be printed or logged."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass
class PostgresServer:
    """One PostgreSQL server of this machine's installation, on a cluster of its own.

    It listens on 127.0.0.1:``port`` only, with its Unix socket inside its data directory
    (never in the system's /var/run/postgresql), and asks every client for the password of
    its one role, ``agent_runtime`` (a superuser: it creates and drops the tests'
    databases). :meth:`url` is the ``DATABASE_URL`` the service reads. The admin helpers
    (:meth:`psql`, :meth:`create_database`, ...) run the installation's own ``psql`` over the
    same TCP address, with the password in the environment, never on a command line.

    Made by :func:`postgres_server`; the server process itself is :attr:`process`, a
    :class:`ManagedProcess` stopped by a signal to the postmaster alone (pg_ctl's modes), so
    `make stack-down` stops it as cleanly as :meth:`stop` does.
    """

    bindir: Path
    data_dir: Path
    port: int
    password: str
    process: ManagedProcess
    os_user: str | None = None
    role: str = POSTGRES_ROLE
    database: str = POSTGRES_DATABASE
    temporary: bool = False

    def url(self, database: str | None = None) -> str:
        """``postgresql://agent_runtime:<password>@127.0.0.1:<port>/<database>``."""
        name = self.database if database is None else database
        quote = urllib.parse.quote
        return (
            f"postgresql://{quote(self.role, safe='')}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(name, safe='')}"
        )

    @property
    def running(self) -> bool:
        return self.process.running

    def accepting(self) -> bool:
        """True when the server accepts connections (pg_isready, no authentication)."""
        result = subprocess.run(
            [
                str(self.bindir / "pg_isready"),
                "--quiet",
                "--host=127.0.0.1",
                f"--port={self.port}",
                "--timeout=2",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it accepts connections, then create
        :attr:`database` if the cluster has none yet.

        After a crash (:meth:`kill`, or ``immediate`` mode) the server runs crash recovery
        first, within the same deadline. A server that exits while starting (its port taken,
        a broken data directory) fails at once with the tail of its log.
        """
        if self.running:
            raise RuntimeError(f"PostgreSQL on port {self.port} is already running")
        self.process.start()
        try:
            self.process.wait_healthy(timeout=timeout, interval=0.05)
            if not self.database_exists(self.database):
                self.create_database(self.database)
        except BaseException:
            self.process.kill()
            raise

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> int | None:
        """Shut down in one of pg_ctl's modes; SIGKILL to its processes at the deadline.

        ``fast`` (the default) ends every session, rolls back their open transactions and
        writes a checkpoint: what a restart under load needs. Returns the postmaster's exit
        code (0 after a clean shutdown).
        """
        return self.process.stop(timeout=timeout, sig=POSTGRES_STOP_SIGNALS[mode])

    def kill(self) -> int | None:
        """SIGKILL to the postmaster and every backend: a crash. The next :meth:`start` runs
        crash recovery; every transaction committed before it is still there."""
        return self.process.kill()

    def restart(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """Stop (``mode``) and start again, on the same port and data directory."""
        self.stop(mode=mode, timeout=timeout)
        self.start(timeout=timeout)

    def psql(
        self,
        sql: str,
        *,
        database: str = "postgres",
        variables: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> str:
        """Run ``sql`` as the role in ``database``; its rows, unaligned, ``|`` between values.

        Values go in as psql variables (``:'name'`` a literal, ``:"name"`` an identifier),
        which psql quotes, never by formatting them into ``sql``. A failing statement raises
        :class:`subprocess.CalledProcessError` with psql's message (which never holds the
        password)."""
        argv = [
            str(self.bindir / "psql"),
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--set=ON_ERROR_STOP=1",
            "--host=127.0.0.1",
            f"--port={self.port}",
            f"--username={self.role}",
            f"--dbname={database}",
        ]
        argv += [f"--set={key}={value}" for key, value in (variables or {}).items()]
        result = subprocess.run(
            argv,
            # From standard input, where psql substitutes variables (it does not in -c).
            input=sql,
            env={
                **os.environ,
                "PGPASSWORD": self.password,
                "PGCONNECT_TIMEOUT": str(max(2, int(timeout))),
            },
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return result.stdout.strip()

    def database_exists(self, name: str) -> bool:
        found = self.psql(
            "SELECT 1 FROM pg_database WHERE datname = :'name'", variables={"name": name}
        )
        return found == "1"

    def create_database(self, name: str, *, template: str = "template0") -> None:
        """An empty database (``template0`` holds nothing of ours), owned by the role."""
        self.psql(
            'CREATE DATABASE :"name" TEMPLATE :"template" OWNER :"role"',
            variables={"name": name, "template": template, "role": self.role},
        )

    def drop_database(self, name: str) -> None:
        """Drop it, ending any session still connected to it (a pool a test left open)."""
        self.psql('DROP DATABASE IF EXISTS :"name" WITH (FORCE)', variables={"name": name})

    def remove(self) -> None:
        """Stop the server if it runs, and delete its cluster if it was made for one run."""
        self.stop()
        if self.temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def postgres_server(
    state_dir: Path,
    *,
    port: int | None = None,
    bindir: Path | None = None,
    durable: bool = True,
    temporary: bool = False,
    max_connections: int = 200,
    pid_file: Path | None = None,
) -> PostgresServer:
    """A PostgreSQL server for ``state_dir``, its cluster initialised, not yet started.

    The cluster lives in ``state_dir/postgres`` and its role's password in
    ``state_dir/postgres.password`` (0600), so a later call with the same ``state_dir`` finds
    both again (`make stack` keeps its data between runs). When we are root, the server runs
    as ``postgres``, which must reach its data directory: if it cannot reach
    ``state_dir/postgres`` (pytest's temporary directories are root's alone), the cluster
    goes to a directory of the system's temporary directory named after ``state_dir``.
    ``temporary`` clusters are deleted by :meth:`PostgresServer.remove`.

    ``durable=False`` turns off fsync and full-page writes: a test server's data then
    survives a crash of the server (every commit is still written before it is
    acknowledged, so nothing acknowledged is lost when the server is killed), not a crash
    of the machine. Keep it on where timings are compared (benchmarks) and for data that
    matters. ``port`` defaults to a free one.
    """
    bindir = postgres_bindir() if bindir is None else bindir
    os_user = postgres_os_user()
    state_dir.mkdir(parents=True, exist_ok=True)
    data_dir = _postgres_data_dir(state_dir, os_user)
    password_file = state_dir / "postgres.password"
    if (data_dir / "PG_VERSION").exists():
        if not password_file.exists():
            raise FileNotFoundError(
                f"{data_dir} holds a cluster whose password file {password_file} is gone: "
                "delete the cluster to start afresh"
            )
        password = password_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(18)
        _initdb(bindir, data_dir, password, os_user, durable=durable)
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n")
    port = free_port() if port is None else port
    socket_dir = str(data_dir) if len(f"{data_dir}/.s.PGSQL.{port}") <= _SOCKET_PATH_MAX else ""
    settings = {
        "listen_addresses": "127.0.0.1",
        # No socket in /var/run/postgresql (the system's, perhaps another server's); none at
        # all when the data directory's path is too long for one (clients here use TCP).
        "unix_socket_directories": socket_dir,
        "max_connections": str(max_connections),
    }
    if not durable:
        settings |= {"fsync": "off", "full_page_writes": "off"}
    argv = [str(bindir / "postgres"), "-D", str(data_dir), "-p", str(port)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    server = PostgresServer(
        bindir=bindir,
        data_dir=data_dir,
        port=port,
        password=password,
        process=ManagedProcess(
            "postgres",
            argv,
            env={},
            log_path=state_dir / "postgres.log",
            health_url=f"postgresql://127.0.0.1:{port}",
            cwd=data_dir,
            pid_file=pid_file,
            stop_signal=POSTGRES_STOP_SIGNALS["fast"],
            stop_leader_only=True,
            user=os_user,
        ),
        os_user=os_user,
        temporary=temporary,
    )
    server.process.probe = server.accepting
    return server


def _postgres_data_dir(state_dir: Path, os_user: str | None) -> Path:
    preferred = state_dir / "postgres"
    if os_user is None:
        return preferred
    entry = pwd.getpwnam(os_user)
    if not preferred.exists():
        preferred.mkdir(mode=0o700)
        os.chown(preferred, entry.pw_uid, entry.pw_gid)
    if _usable_by(os_user, preferred):
        return preferred
    if not any(preferred.iterdir()):
        preferred.rmdir()
    # Named after the state directory, so the same one finds its cluster again; made here or
    # refused (a directory someone else made, or a link, could be anything).
    key = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    fallback = Path(tempfile.gettempdir()) / f"agent-runtime-postgres-{key}"
    with contextlib.suppress(FileExistsError):
        fallback.mkdir(mode=0o700)
        os.chown(fallback, entry.pw_uid, entry.pw_gid)
    info = fallback.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != entry.pw_uid or info.st_mode & 0o077:
        raise PermissionError(f"{fallback} is not a private directory of {os_user!r}")
    if not _usable_by(os_user, fallback):
        raise PermissionError(f"{os_user!r} cannot write {preferred} nor {fallback}")
    return fallback


def _usable_by(os_user: str, path: Path) -> bool:
    """Whether ``os_user`` can reach and write ``path`` (every parent searchable)."""
    result = subprocess.run(
        ["test", "-w", str(path), "-a", "-x", str(path)],
        stdin=subprocess.DEVNULL,
        timeout=10,
        check=False,
        **run_as(os_user),
    )
    return result.returncode == 0


def _initdb(
    bindir: Path, data_dir: Path, password: str, os_user: str | None, *, durable: bool
) -> None:
    """A new cluster in ``data_dir``: the role with ``password``, password authentication for
    every connection (TCP and socket), UTF-8 with the C locale (the same on every machine)."""
    # initdb reads the password from a file the server's user can open.
    fd, pwfile = tempfile.mkstemp(prefix="agent-runtime-pwfile-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        if os_user is not None:
            entry = pwd.getpwnam(os_user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        argv = [
            str(bindir / "initdb"),
            f"--pgdata={data_dir}",
            f"--username={POSTGRES_ROLE}",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        if not durable:
            argv.append("--no-sync")
        result = subprocess.run(
            argv,
            cwd=data_dir.parent,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **run_as(os_user),
        )
    finally:
        os.unlink(pwfile)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stderr[-2000:]}")


# --- the stacks --------------------------------------------------------------------------------


@dataclass
class SingleStack:
    """Jaeger, one Collector, Prometheus and (optionally) the service."""

    ports: Ports
    state_dir: Path
    jaeger: ManagedProcess
    collector: ManagedProcess
    prometheus: ManagedProcess
    service: ManagedProcess | None = None

    @property
    def processes(self) -> list[ManagedProcess]:
        """In start order."""
        procs = [self.jaeger, self.collector, self.prometheus]
        return procs + ([self.service] if self.service is not None else [])

    @property
    def audit_file(self) -> Path:
        return audit_file(self.state_dir / "collector")


def single_stack(
    ports: Ports,
    state_dir: Path,
    *,
    collector: Path,
    jaeger: Path,
    prometheus: Path,
    service_argv: Sequence[str] | None,
    pid_files: bool,
    collector_configs: Sequence[Path] = (COLLECTOR_CONFIG,),
    service_extra_env: Mapping[str, str] | None = None,
) -> SingleStack:
    """The one-machine stack (docker compose's default services) as processes;
    ``service_extra_env`` is added to the service's (its ``DATABASE_URL``, say)."""

    def pid(name: str) -> Path | None:
        return state_dir / f"{name}.pid" if pid_files else None

    collector_state = state_dir / "collector"
    target = ScrapeTarget("collector", "single", ports.collector)
    stack = SingleStack(
        ports,
        state_dir,
        jaeger_process(jaeger, ports.jaeger, state_dir, pid_file=pid("jaeger")),
        collector_process(
            "collector",
            collector,
            collector_configs,
            collector_env(ports.collector, collector_state, jaeger=ports.jaeger),
            ports.collector,
            state_dir,
            pid_file=pid("collector"),
        ),
        prometheus_process(
            prometheus,
            ports.prometheus,
            prometheus_config([target]),
            state_dir,
            pid_file=pid("prometheus"),
        ),
    )
    if service_argv is not None:
        stack.service = service_process(
            SERVICE_NAME,
            ports.service,
            {
                **service_env(ports.service, state_dir / SERVICE_NAME, ports.collector.otlp_grpc),
                **(service_extra_env or {}),
            },
            state_dir / f"{SERVICE_NAME}.log",
            argv=service_argv,
            pid_file=pid(SERVICE_NAME),
        )
    return stack


@dataclass
class TieredStack:
    """Jaeger, the gateway tier, one agent per host, Prometheus and one service per host."""

    ports: TierPorts
    state_dir: Path
    jaeger: ManagedProcess
    gateways: list[ManagedProcess]
    agents: list[ManagedProcess]
    prometheus: ManagedProcess
    services: list[ManagedProcess] = field(default_factory=list)

    @property
    def processes(self) -> list[ManagedProcess]:
        """In start order: each tier after the one it sends to."""
        return [self.jaeger, *self.gateways, *self.agents, self.prometheus, *self.services]

    def agent_state(self, index: int) -> Path:
        return self.state_dir / f"agent-{index + 1}"

    def gateway_state(self, index: int) -> Path:
        return self.state_dir / f"gateway-{index + 1}"

    def audit_files(self) -> list[Path]:
        """Each host's audit sink: the agent beside the service writes it."""
        return [audit_file(self.agent_state(i)) for i in range(len(self.agents))]


def tiered_stack(
    ports: TierPorts,
    state_dir: Path,
    *,
    collector: Path,
    jaeger: Path,
    prometheus: Path,
    service_argv: Sequence[str] | None,
    pid_files: bool,
    gateway_env: Mapping[str, str] | None = None,
    gateway_configs: Sequence[Path] = (GATEWAY_CONFIG,),
    service_extra_env: Mapping[str, str] | None = None,
) -> TieredStack:
    """Agent and gateway tiers as processes (docker compose's `scale` profile).

    Host ``i`` is service ``i`` and agent ``i``; every agent routes to every gateway by
    trace id. ``gateway_env`` overrides the gateways' settings (the sampling knobs).
    """

    def pid(name: str) -> Path | None:
        return state_dir / f"{name}.pid" if pid_files else None

    targets: list[ScrapeTarget] = []
    gateways = []
    for j, gateway_ports in enumerate(ports.gateways):
        name = f"gateway-{j + 1}"
        env = {
            **collector_env(gateway_ports, state_dir / name, jaeger=ports.jaeger),
            **(gateway_env or {}),
        }
        gateways.append(
            collector_process(
                name, collector, gateway_configs, env, gateway_ports, state_dir, pid_file=pid(name)
            )
        )
        targets.append(ScrapeTarget(name, "gateway", gateway_ports, exports_metrics=False))
    agents = []
    for i, agent_ports in enumerate(ports.agents):
        name = f"agent-{i + 1}"
        env = agent_env(agent_ports, state_dir / name, ports.gateways)
        agents.append(
            collector_process(
                name, collector, [AGENT_CONFIG], env, agent_ports, state_dir, pid_file=pid(name)
            )
        )
        targets.append(ScrapeTarget(name, "agent", agent_ports))
    stack = TieredStack(
        ports,
        state_dir,
        jaeger_process(jaeger, ports.jaeger, state_dir, pid_file=pid("jaeger")),
        gateways,
        agents,
        prometheus_process(
            prometheus,
            ports.prometheus,
            prometheus_config(targets),
            state_dir,
            pid_file=pid("prometheus"),
        ),
    )
    if service_argv is not None:
        for i, (port, agent_ports) in enumerate(zip(ports.services, ports.agents, strict=True)):
            name = f"{SERVICE_NAME}-{i + 1}"
            env = {
                **service_env(port, state_dir / name, agent_ports.otlp_grpc, instance=name),
                **(service_extra_env or {}),
            }
            stack.services.append(
                service_process(
                    name,
                    port,
                    env,
                    state_dir / f"{name}.log",
                    argv=service_argv,
                    pid_file=pid(name),
                )
            )
    return stack
