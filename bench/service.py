"""The real service under uvicorn in its own process, as ``agent-runtime serve`` runs it,
with an OTLP endpoint chosen by the benchmark; CPU and RSS read from /proc. The process is
started and stopped by scripts.processes, the module the stack and the tests use too."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from scripts import processes
from scripts.processes import free_port as free_port  # bench.outage's 'closed endpoint'

from bench.postgres import server_cpu_s
from bench.proc import ROOT, cpu_seconds, python_env, rss_mb

_SERVE = "from agent_runtime.cli import main; main()"


class Receiver:
    """``bench.receiver`` in its own process."""

    def __init__(self, mode: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", mode],
            cwd=ROOT,
            env=python_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port: int = json.loads(self.proc.stdout.readline())["port"]

    def counts(self) -> dict[str, int]:
        """What a ``count`` receiver received so far (:func:`bench.receiver.count_spans`)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/counts", timeout=60) as got:
            counts: dict[str, int] = json.load(got)
        return counts

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def telemetry_env(endpoint_port: int | None, **extra: str) -> dict[str, str]:
    """``None``: telemetry off (``OTEL_SDK_DISABLED``); else OTLP/HTTP to that port."""
    if endpoint_port is None:
        return {"OTEL_SDK_DISABLED": "true", **extra}
    return {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{endpoint_port}",
        **extra,
    }


class Service:
    """``database_pid``: the postmaster of the PostgreSQL server the service's
    ``DATABASE_URL`` names, whose CPU :meth:`database_cpu_s` reads (None on SQLite: the
    store is inside the service's process)."""

    def __init__(self, name: str, env: dict[str, str], *, database_pid: int | None = None) -> None:
        self.name = name
        self.database_pid = database_pid
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix=f"bench-svc-{name}-")
        self.stdout_path = Path(self._dir.name) / "stdout.log"
        full_env = {
            "AGENT_RUNTIME_DATA_DIR": str(Path(self._dir.name) / "data"),
            "OTEL_SERVICE_NAME": f"bench-{name}",
            **env,
        }
        self._process = processes.service_process(
            name,
            self.port,
            python_env(full_env),
            self.stdout_path,
            argv=[sys.executable, "-c", _SERVE, "serve", "--port", str(self.port)],
            cwd=ROOT,
            inherit_env=False,
            stderr_path=Path(self._dir.name) / "stderr.log",
        )
        self._process.start()
        try:
            self._process.wait_healthy(timeout=30.0, interval=0.1)
        except (TimeoutError, processes.ProcessExited) as exc:
            self._process.kill()
            raise RuntimeError(f"service {self.name} not ready: {exc}") from None
        assert self._process.popen is not None
        self.proc: subprocess.Popen[bytes] = self._process.popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    def database_cpu_s(self) -> float | None:
        """CPU of its database server so far (every process of it), None without one."""
        return None if self.database_pid is None else server_cpu_s(self.database_pid)

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def stop(self, timeout_s: float = 60.0) -> float:
        """SIGTERM, then seconds until the process exited (killed after ``timeout_s``)."""
        if self.proc.poll() is not None:
            return 0.0
        start = time.monotonic()
        self._process.stop(timeout=timeout_s)
        return time.monotonic() - start

    def close(self) -> None:
        self.stop(timeout_s=10)
        self._dir.cleanup()

    def dropped(self) -> dict[str, float]:
        """``agent_runtime.telemetry.dropped`` by signal, from the latest console export
        (``OTEL_METRICS_EXPORTER`` includes ``console``); empty when never reported."""
        text = self.stdout_path.read_text(errors="replace")
        decoder, i, latest = json.JSONDecoder(), 0, {}
        while (i := text.find("{", i)) != -1:
            try:
                doc, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            i = end
            found = _dropped_points(doc)
            if found is not None:
                latest = found
        return latest


def _dropped_points(doc: Any) -> dict[str, float] | None:
    if not isinstance(doc, dict) or "resource_metrics" not in doc:
        return None
    for resource in doc["resource_metrics"]:
        for scope in resource.get("scope_metrics", []):
            for metric in scope.get("metrics", []):
                if metric.get("name") == "agent_runtime.telemetry.dropped":
                    return {
                        str(point["attributes"].get("agent_runtime.telemetry.signal")): float(
                            point["value"]
                        )
                        for point in metric["data"]["data_points"]
                    }
    return None
