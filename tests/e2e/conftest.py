"""Fixtures that run the real telemetry pipeline as processes on free ports.

The Collector and Jaeger are built from their Go modules by scripts/build-collector.sh and
scripts/build-jaeger.sh (cached outside the repository, so only the first run builds);
Prometheus comes from Debian (deploy/ci-prereqs.sh installs it). The tests are skipped only
when `go` is missing; a missing Prometheus or service entry point is a failure.

Every process gets its ports from ``Ports.free()``, its state in a tmp dir, and is polled on
its health endpoint with a deadline; teardown stops each one (SIGTERM, then SIGKILL at a
deadline). The process handling lives in scripts/stack.py, shared with `make stack`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    SERVICE_ENTRY_POINT,
    ManagedProcess,
    Ports,
    Service,
    TelemetryStack,
    stackctl,
)


@pytest.fixture(scope="session")
def go_toolchain() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.skip(
            "go is not on PATH: the e2e tests build the Collector and Jaeger from Go modules"
        )
    return go


@pytest.fixture(scope="session")
def collector_binary(go_toolchain: str) -> Path:
    """The Collector from deploy/collector/builder-config.yaml (built once, then reused)."""
    return stackctl.build("build-collector.sh")


@pytest.fixture(scope="session")
def jaeger_binary(go_toolchain: str) -> Path:
    """Jaeger v2 from deploy/jaeger/go.mod (built once, then reused)."""
    return stackctl.build("build-jaeger.sh")


@pytest.fixture(scope="session")
def prometheus_binary() -> Path:
    try:
        return Path(stackctl.prometheus_binary())
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def telemetry_stack(
    tmp_path_factory: pytest.TempPathFactory,
    collector_binary: Path,
    jaeger_binary: Path,
    prometheus_binary: Path,
) -> Iterator[TelemetryStack]:
    """Jaeger, the Collector and Prometheus on free ports, healthy, for the whole session."""
    ports = Ports.free()
    state_dir = tmp_path_factory.mktemp("stack")
    jaeger, collector, prometheus = stackctl.local_stack(
        ports,
        state_dir,
        collector=collector_binary,
        jaeger=jaeger_binary,
        prometheus=prometheus_binary,
        service_argv=None,
        pid_files=False,
    )
    started: list[stackctl.ManagedProcess] = []
    try:
        for proc in (jaeger, collector, prometheus):
            proc.start()
            started.append(proc)
            proc.wait_healthy(timeout=90)
        yield TelemetryStack(ports, state_dir, collector, jaeger, prometheus)
    finally:
        for proc in reversed(started):
            proc.stop()


@pytest.fixture(scope="session")
def service(
    telemetry_stack: TelemetryStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """`agent-runtime serve` as a process, exporting OTLP/gRPC to the stack's Collector."""
    if not SERVICE_ENTRY_POINT.exists():
        pytest.fail(f"{SERVICE_ENTRY_POINT} is missing: run `uv sync` (make sync) first")
    data_dir = tmp_path_factory.mktemp("agent-runtime-data")
    env = {
        **stackctl.service_env(telemetry_stack.ports, data_dir),
        # Unacknowledged audit records go out again after 2 s instead of 10 s.
        "AGENT_RUNTIME_AUDIT_RESEND_INTERVAL_S": "2",
    }
    proc = ManagedProcess(
        "agent-runtime",
        [str(SERVICE_ENTRY_POINT), "serve"],
        env=env,
        log_path=telemetry_stack.state_dir / "agent-runtime.log",
        health_url=f"http://127.0.0.1:{telemetry_stack.ports.service}/healthz",
    )
    proc.start()
    try:
        proc.wait_healthy(timeout=60)
        yield Service(f"http://127.0.0.1:{telemetry_stack.ports.service}", proc, data_dir)
    finally:
        proc.stop()
