"""The real service under uvicorn in its own process, as ``agent-runtime serve`` runs it,
with an OTLP endpoint chosen by the benchmark; CPU and RSS read from /proc."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.proc import ROOT, cpu_seconds, python_env, rss_mb

_SERVE = "from agent_runtime.cli import main; main()"


def free_port() -> int:
    """A port nothing listens on (bound, then released): the 'closed endpoint'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix=f"bench-svc-{name}-")
        self.stdout_path = Path(self._dir.name) / "stdout.log"
        self._stdout = self.stdout_path.open("w")
        full_env = {
            "AGENT_RUNTIME_DATA_DIR": str(Path(self._dir.name) / "data"),
            "OTEL_SERVICE_NAME": f"bench-{name}",
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=python_env(full_env),
            stdout=self._stdout,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service {self.name} exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"service {self.name} not ready in {timeout_s} s")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def stop(self, timeout_s: float = 60.0) -> float:
        """SIGTERM, then seconds until the process exited (killed after ``timeout_s``)."""
        if self.proc.poll() is not None:
            return 0.0
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        elapsed = time.monotonic() - start
        self._stdout.close()
        return elapsed

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
