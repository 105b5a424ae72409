"""Fixtures that run the real telemetry pipeline as processes on free ports.

The Collector and Jaeger are built from their Go modules by scripts/build-collector.sh and
scripts/build-jaeger.sh (cached outside the repository, so only the first run builds);
Prometheus comes from Debian (deploy/ci-prereqs.sh installs it). The tests are skipped only
when `go` is missing; a missing Prometheus or service entry point is a failure.

Every process gets its ports from a :class:`PortPool`, its state in a tmp dir, and is polled
on its health endpoint with a deadline; teardown stops each one (SIGTERM, then SIGKILL at a
deadline). The process handling lives in scripts/processes/, shared with `make stack`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import SERVICE_ENTRY_POINT, Ports, Service, TelemetryStack
from scripts import processes


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
    return processes.build("build-collector.sh")


@pytest.fixture(scope="session")
def jaeger_binary(go_toolchain: str) -> Path:
    """Jaeger v2 from deploy/jaeger/go.mod (built once, then reused)."""
    return processes.build("build-jaeger.sh")


@pytest.fixture(scope="session")
def prometheus_binary() -> Path:
    try:
        return processes.prometheus_binary()
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
    stack = processes.single_stack(
        Ports.free(),
        tmp_path_factory.mktemp("stack"),
        collector=collector_binary,
        jaeger=jaeger_binary,
        prometheus=prometheus_binary,
        service_argv=None,
        pid_files=False,
    )
    processes.start_all(stack.processes)
    try:
        yield TelemetryStack(
            stack.ports, stack.state_dir, stack.collector, stack.jaeger, stack.prometheus
        )
    finally:
        processes.stop_all(stack.processes)


@pytest.fixture(scope="session")
def service(
    telemetry_stack: TelemetryStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """`agent-runtime serve` as a process, exporting OTLP/gRPC to the stack's Collector."""
    if not SERVICE_ENTRY_POINT.exists():
        pytest.fail(f"{SERVICE_ENTRY_POINT} is missing: run `uv sync` (make sync) first")
    ports = telemetry_stack.ports
    data_dir = tmp_path_factory.mktemp("agent-runtime-data")
    env = {
        **processes.service_env(ports.service, data_dir, ports.collector.otlp_grpc),
        # Unacknowledged audit records go out again after 2 s instead of 10 s.
        "AGENT_RUNTIME_AUDIT_RESEND_INTERVAL_S": "2",
        # The SDK's default exemplar filter: histogram points recorded inside a sampled span
        # carry its trace id, which the dashboard's latency panels link to.
        "OTEL_METRICS_EXEMPLAR_FILTER": "trace_based",
    }
    proc = processes.service_process(
        "agent-runtime", ports.service, env, telemetry_stack.state_dir / "agent-runtime.log"
    )
    proc.start()
    try:
        proc.wait_healthy(timeout=60)
        yield Service(f"http://127.0.0.1:{ports.service}", proc, data_dir)
    finally:
        proc.stop()
