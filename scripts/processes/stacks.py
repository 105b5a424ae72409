"""The two stacks made of the programs: one Collector (:func:`single_stack`), or agent and
gateway tiers (:func:`tiered_stack`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scripts.processes.config import AGENT_CONFIG, COLLECTOR_CONFIG, GATEWAY_CONFIG, SERVICE_NAME
from scripts.processes.environments import (
    ScrapeTarget,
    agent_env,
    audit_file,
    collector_env,
    prometheus_config,
    service_env,
)
from scripts.processes.managed import ManagedProcess
from scripts.processes.ports import Ports, TierPorts
from scripts.processes.programs import (
    collector_process,
    jaeger_process,
    prometheus_process,
    service_process,
)


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
