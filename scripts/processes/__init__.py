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

The package's modules, each with one reason to change: :mod:`~scripts.processes.config` (the
repository's paths), :mod:`~scripts.processes.waiting`, :mod:`~scripts.processes.managed` (one
program as a process), :mod:`~scripts.processes.binaries`, :mod:`~scripts.processes.ports`,
:mod:`~scripts.processes.environments`, :mod:`~scripts.processes.programs`,
:mod:`~scripts.processes.postgres`, :mod:`~scripts.processes.stacks`. Callers import
everything from here.
"""

from __future__ import annotations

from scripts.processes.binaries import (
    build,
    haproxy_binary,
    prometheus_binary,
    service_entry_point,
)
from scripts.processes.config import (
    AGENT_CONFIG,
    AGENT_DNS_OVERLAY,
    ALERT_RULES,
    COLLECTOR_CONFIG,
    GATEWAY_CONFIG,
    JAEGER_CONFIG,
    REPO,
    SERVICE_NAME,
    TAIL_SAMPLING_OVERLAY,
)
from scripts.processes.environments import (
    ScrapeTarget,
    agent_env,
    audit_file,
    collector_env,
    jaeger_env,
    prometheus_config,
    service_env,
)
from scripts.processes.managed import (
    ManagedProcess,
    PidRecord,
    group_alive,
    run_as,
    start_all,
    stop_all,
    stop_recorded,
)
from scripts.processes.ports import (
    CollectorPorts,
    JaegerPorts,
    Ports,
    TierPorts,
)
from scripts.processes.postgres import (
    POSTGRES_DATABASE,
    POSTGRES_INSTALL_ROOT,
    POSTGRES_OS_USER,
    POSTGRES_ROLE,
    POSTGRES_STACK_PORT,
    POSTGRES_STOP_SIGNALS,
    POSTGRES_TOOLS,
    PostgresServer,
    postgres_bindir,
    postgres_os_user,
    postgres_server,
    redact_url,
)
from scripts.processes.programs import (
    balancer_config,
    balancer_process,
    collector_process,
    jaeger_process,
    prometheus_process,
    service_process,
)
from scripts.processes.stacks import (
    SingleStack,
    TieredStack,
    single_stack,
    tiered_stack,
)
from scripts.processes.waiting import (
    PortPool,
    ProcessExited,
    free_port,
    http_ok,
    wait_until,
)

__all__ = [
    "AGENT_CONFIG",
    "AGENT_DNS_OVERLAY",
    "ALERT_RULES",
    "COLLECTOR_CONFIG",
    "GATEWAY_CONFIG",
    "JAEGER_CONFIG",
    "POSTGRES_DATABASE",
    "POSTGRES_INSTALL_ROOT",
    "POSTGRES_OS_USER",
    "POSTGRES_ROLE",
    "POSTGRES_STACK_PORT",
    "POSTGRES_STOP_SIGNALS",
    "POSTGRES_TOOLS",
    "REPO",
    "SERVICE_NAME",
    "TAIL_SAMPLING_OVERLAY",
    "CollectorPorts",
    "JaegerPorts",
    "ManagedProcess",
    "PidRecord",
    "PortPool",
    "Ports",
    "PostgresServer",
    "ProcessExited",
    "ScrapeTarget",
    "SingleStack",
    "TierPorts",
    "TieredStack",
    "agent_env",
    "audit_file",
    "balancer_config",
    "balancer_process",
    "build",
    "collector_env",
    "collector_process",
    "free_port",
    "group_alive",
    "haproxy_binary",
    "http_ok",
    "jaeger_env",
    "jaeger_process",
    "postgres_bindir",
    "postgres_os_user",
    "postgres_server",
    "prometheus_binary",
    "prometheus_config",
    "prometheus_process",
    "redact_url",
    "run_as",
    "service_entry_point",
    "service_env",
    "service_process",
    "single_stack",
    "start_all",
    "stop_all",
    "stop_recorded",
    "tiered_stack",
    "wait_until",
]
