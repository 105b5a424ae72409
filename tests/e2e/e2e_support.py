"""What the e2e tests share: scripts/stack.py (loaded by path), the stack's handles.

scripts/stack.py runs the Collector, Jaeger and Prometheus as processes for `make stack`
and for these tests alike; it is not a package, so it is loaded from its file here once.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
SERVICE_ENTRY_POINT = REPO / ".venv" / "bin" / "agent-runtime"


def _load_stack_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "agent_runtime_stack", REPO / "scripts" / "stack.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


stackctl = _load_stack_module()
Ports = stackctl.Ports
ManagedProcess = stackctl.ManagedProcess
wait_until = stackctl.wait_until


@dataclass
class TelemetryStack:
    """The running Collector, Jaeger and Prometheus of one test session."""

    ports: stackctl.Ports
    state_dir: Path
    collector: stackctl.ManagedProcess
    jaeger: stackctl.ManagedProcess
    prometheus: stackctl.ManagedProcess

    @property
    def jaeger_api(self) -> str:
        return f"http://127.0.0.1:{self.ports.jaeger_query_http}"

    @property
    def prometheus_api(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    @property
    def collector_prometheus(self) -> str:
        return f"http://127.0.0.1:{self.ports.collector_prometheus}/metrics"

    @property
    def audit_file(self) -> Path:
        return stackctl.audit_file(self.state_dir / "collector")

    def restart(self, proc: stackctl.ManagedProcess, timeout: float = 60.0) -> None:
        """Start a stopped or killed process again on the same ports and state."""
        assert not proc.running, f"{proc.name} is still running"
        proc.start()
        proc.wait_healthy(timeout=timeout)


@dataclass
class Service:
    """The agent-runtime service running as a real process against the stack."""

    base_url: str
    process: stackctl.ManagedProcess
    data_dir: Path
