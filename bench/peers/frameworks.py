"""Who is measured, in which environment, and the processes that run them.

Each :class:`Framework` is one driver process: agent-runtime and the hand-written floor on
the service's own environment (its ``uv.lock``), the peers on ``bench/peers``' (its own
``uv.lock``; no peer package ever enters the service's). The exported spans (and log
records) each variant must produce per run are part of the table: a run that exports
anything else fails the benchmark, so a figure never hides a trace that went missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[2]
PEERS_PROJECT = ROOT / "bench" / "peers"
Environment = Literal["service", "peers"]


@dataclass(frozen=True, slots=True)
class Framework:
    """One driver process and what its runs must export."""

    key: str
    """Prefix of its fields in the ``peers:`` line."""
    label: str
    module: str
    environment: Environment
    spans: dict[str, int]
    """Exported spans per run, by variant (0: nothing may be exported)."""
    runs: int = 200
    """Runs of each variant per round: more where the telemetry costs least next to the run
    (the difference must stand out of the noise), fewer where a run is long."""
    options: tuple[str, ...] = ()
    histogram_points: dict[str, int] = field(default_factory=dict)
    """Histogram points recorded per run, by variant (absent: 0)."""
    logs: dict[str, int] = field(default_factory=dict)
    """Exported log records per run, by variant (absent: 0)."""

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(self.spans)


FRAMEWORKS = (
    Framework(
        "runtime",
        "agent-runtime",
        "bench.peers.drivers.runtime",
        "service",
        # agent.request, invoke_agent, 2 chat, execute_tool; the audit record of the agent choice
        {"on": 5, "off": 0},
        # 2 model-call durations, 4 token counts, the agent's and the tool's durations
        histogram_points={"on": 8},
        logs={"on": 1},
        runs=400,
    ),
    Framework(
        "split",
        "agent-runtime, what only it does",
        "bench.peers.drivers.runtime",
        "service",
        {"off": 0, "unaudited": 0, "lean": 0},
        options=("split",),
        runs=250,
    ),
    Framework(
        "floor",
        "floor (raw openai + SDK by hand)",
        "bench.peers.drivers.floor",
        "service",
        # invoke_agent, 2 chat, execute_tool; signals adds agent.request and the audit record
        {"on": 4, "signals": 5, "off": 0},
        histogram_points={"signals": 8},
        logs={"signals": 1},
        runs=400,
    ),
    Framework(
        "pydantic_ai",
        "pydantic-ai",
        "bench.peers.drivers.pydantic_ai_agent",
        "peers",
        # invoke_agent, 2 chat, execute_tool
        {"on": 4, "off": 0},
        # 2 model-call durations, 4 token counts
        histogram_points={"on": 6},
        runs=150,
    ),
    Framework(
        "agents_oi",
        "Agents SDK + OpenInference",
        "bench.peers.drivers.openai_agents",
        "peers",
        # the trace's root and its task (both "Agent workflow"), the agent, 2 turns,
        # 2 generations, the function
        {"on": 8, "off": 0},
        options=("oi",),
        runs=150,
    ),
    Framework(
        "agents_native",
        "Agents SDK native tracing",
        "bench.peers.drivers.openai_agents",
        "peers",
        # (and 1 trace) task, agent, 2 turns, 2 generations, function
        {"on": 7, "off": 0},
        options=("native",),
        runs=250,
    ),
    Framework(
        "langgraph_oi",
        "LangGraph + OpenInference",
        "bench.peers.drivers.langgraph_graph",
        "peers",
        # LangGraph, 2 agent nodes with their ChatOpenAI and tools_condition, tools, read_file
        {"on": 9, "off": 0},
        runs=120,
    ),
)


def peers_python() -> str:
    """The peers' interpreter: ``bench/peers/.venv`` (``make bench-peers`` syncs it), or
    ``PEERS_PYTHON``."""
    return os.environ.get("PEERS_PYTHON") or str(PEERS_PROJECT / ".venv" / "bin" / "python")


def _environment(kind: Environment) -> tuple[str, dict[str, str]]:
    """Interpreter and variables for a child: no OTel, OpenAI or LangSmith settings from the
    caller's shell; the repository importable (for ``bench.peers``), and ``src/`` only on
    the service's environment."""
    drop = ("OTEL_", "OPENAI_", "LANGSMITH_", "LANGCHAIN_", "AGENT_RUNTIME_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONUNBUFFERED"] = "1"
    if kind == "service":
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        return sys.executable, env
    env["PYTHONPATH"] = str(ROOT)
    return peers_python(), env


class Child:
    """A ``python -m module args…`` child answering one JSON line per command line."""

    def __init__(self, kind: Environment, module: str, *args: str) -> None:
        python, env = _environment(kind)
        self.command = [python, "-m", module, *args]
        self.proc = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready: dict[str, Any] = {}

    def wait_ready(self) -> dict[str, Any]:
        """The child's first line (it prints it once it is built); children started one
        after the other build side by side."""
        self.ready = self._read()
        return self.ready

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{' '.join(self.command)} exited ({self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self, command: str | None = "quit") -> None:
        if self.proc.poll() is None:
            try:
                if command is not None:
                    self.ask(command)
                elif self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (RuntimeError, BrokenPipeError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class Driver(Child):
    def __init__(self, framework: Framework, base_url: str, files: Path) -> None:
        kind, module = framework.environment, framework.module
        super().__init__(kind, module, base_url, str(files), *framework.options)
        self.framework = framework


class WorkloadProcess(Child):
    """The workload server (:mod:`bench.peers.workload`) on the service's interpreter."""

    def __init__(self) -> None:
        super().__init__("service", "bench.peers.workload")
        self.port = int(self.wait_ready()["port"])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as r:
            answer: dict[str, Any] = json.loads(r.read())
        return answer

    def close(self, command: str | None = None) -> None:
        super().close(None)  # the server stops when its standard input closes
