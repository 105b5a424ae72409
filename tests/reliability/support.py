"""Helpers of the reliability suite: scale knobs, the real CLI server as a subprocess
(started by scripts.processes, the module the stack, the e2e tests and the benchmarks share),
SSE over httpx, trace-completeness checks and a secret scanner.

Short forms run in ``make test``; ``AGENT_RUNTIME_SOAK=1`` (``make soak``) scales every
count up. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from scripts import processes
from scripts.processes import free_port

from tests.support.server import SSE, sse_events

SOAK = os.environ.get("AGENT_RUNTIME_SOAK", "").strip().lower() in ("1", "true", "yes", "on")
CLI = Path(sys.executable).with_name("agent-runtime")
KEY = "reliability-internal-key-7f3a9c2e"
PROVIDER_KEY = "sk-reliabilityprovider0123456789abcdefXYZ"


def scale(short: int, soak: int) -> int:
    """``short`` in ``make test``, ``soak`` under ``AGENT_RUNTIME_SOAK=1``."""
    return soak if SOAK else short


def poll(predicate: Any, *, timeout_s: float, what: str, every_s: float = 0.01) -> Any:
    """Call ``predicate`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


async def apoll(predicate: Any, *, timeout_s: float, what: str, every_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(every_s)


# --- the real CLI server ----------------------------------------------------------------


def service_env(data_dir: Path, port: int, **overrides: str) -> dict[str, str]:
    """The process environment minus any OTEL_*/AGENT_RUNTIME_* of the outer shell, with
    telemetry exporters off unless ``overrides`` turn them on."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "AGENT_RUNTIME_", "OPENAI_", "LLM_", "DATABASE_URL"))
    }
    env.update(
        PORT=str(port),
        HOST="127.0.0.1",
        AGENT_RUNTIME_DATA_DIR=str(data_dir),
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@dataclass
class ServiceProcess:
    """``agent-runtime serve`` in a subprocess; stdout and stderr go to files."""

    managed: processes.ManagedProcess
    process: subprocess.Popen[bytes]
    url: str
    stdout_path: Path
    stderr_path: Path
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def num_fds(self) -> int:
        return int(psutil.Process(self.pid).num_fds())

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill9(self) -> None:
        self.managed.kill()

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM, then SIGKILL at the deadline; the exit code."""
        code = self.managed.stop(timeout=timeout_s)
        return int(code if code is not None else self.process.returncode)


def start_service(
    workdir: Path,
    data_dir: Path,
    *,
    name: str = "svc",
    startup_s: float = 30.0,
    health_path: str = "/readyz",
    **env: str,
) -> ServiceProcess:
    """Start the CLI server and wait (polling ``health_path`` with a deadline) until it
    answers: ``/readyz`` (its store answers too) unless told ``/healthz`` (it serves)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    out, err = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    managed = processes.service_process(
        name,
        port,
        service_env(data_dir, port, **env),
        out,
        argv=[str(CLI), "serve"],
        cwd=workdir,
        health_path=health_path,
        inherit_env=False,
        stderr_path=err,
        append_logs=False,
    )
    managed.start()
    assert managed.popen is not None
    service = ServiceProcess(managed, managed.popen, f"http://127.0.0.1:{port}", out, err)
    if "AGENT_RUNTIME_INTERNAL_KEY" in env:
        service.headers["X-Internal-Auth"] = env["AGENT_RUNTIME_INTERNAL_KEY"]
    try:
        managed.wait_healthy(timeout=startup_s, interval=0.02)
    except (TimeoutError, processes.ProcessExited) as exc:
        managed.kill()
        raise AssertionError(f"the service did not become ready: {exc}") from None
    return service


@contextmanager
def running_service(workdir: Path, data_dir: Path, **kwargs: Any) -> Iterator[ServiceProcess]:
    service = start_service(workdir, data_dir, **kwargs)
    try:
        yield service
    finally:
        service.managed.kill()


# --- conversations ------------------------------------------------------------------------


@dataclass
class Outcome:
    session_id: str
    status: int = 0
    correlation_id: str | None = None
    events: list[SSE] = field(default_factory=list)
    error: str | None = None

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.event == name]

    @property
    def ok(self) -> bool:
        names = [e.event for e in self.events]
        return (
            self.error is None
            and self.status == 200
            and bool(names)
            and names[0] == "meta"
            and names[-1] == "done"
            and "error" not in names
        )


async def converse(
    http: httpx.AsyncClient,
    session_id: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    stop_at: str | None = None,
) -> Outcome:
    """Run one SSE conversation to its end (or until ``stop_at``); never raises."""
    outcome = Outcome(session_id)
    try:
        async with http.stream(
            "POST",
            "/agent/message/stream",
            json={"session_id": session_id, "message": message},
            headers=headers or {},
        ) as response:
            outcome.status = response.status_code
            outcome.correlation_id = response.headers.get("x-correlation-id")
            if response.status_code != 200:
                outcome.error = (await response.aread()).decode(errors="replace")[:500]
                return outcome
            async for event in sse_events(response):
                outcome.events.append(event)
                if stop_at is not None and event.event == stop_at:
                    break
    except Exception as exc:  # a failed request is data here, counted by the test
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


# --- traces ---------------------------------------------------------------------------------


def by_trace(spans: Iterable[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    grouped: dict[str, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        assert span.context is not None
        grouped[f"{span.context.trace_id:032x}"].append(span)
    return grouped


def trace_problems(spans: list[ReadableSpan]) -> list[str]:
    """What makes one trace incomplete: a span exported twice (ended twice), a parent that
    never ended (orphan children), other than exactly one local root."""
    problems = []
    ids = Counter(s.context.span_id for s in spans if s.context is not None)
    problems += [f"span {i:016x} exported {c} times" for i, c in ids.items() if c > 1]
    roots = [s for s in spans if s.parent is None or s.parent.is_remote]
    if len(roots) != 1:
        problems.append(f"{len(roots)} roots: {[s.name for s in roots]}")
    for span in spans:
        parent = span.parent
        if parent is not None and not parent.is_remote and parent.span_id not in ids:
            problems.append(f"{span.name!r} has a parent that never ended")
        if span.end_time is None:
            problems.append(f"{span.name!r} has no end time")
    return problems


def server_span(spans: list[ReadableSpan]) -> ReadableSpan | None:
    return next((s for s in spans if s.kind == SpanKind.SERVER), None)


# --- secrets ------------------------------------------------------------------------------


def leaks(secrets: Iterable[str], where: str, text: str) -> list[str]:
    return [f"{where} contains {secret[:6]}…" for secret in secrets if secret and secret in text]


def span_text(span: ReadableSpan) -> str:
    parts = [span.name, json.dumps(dict(span.attributes or {}), default=str)]
    for event in span.events:
        parts += [event.name, json.dumps(dict(event.attributes or {}), default=str)]
    parts += [json.dumps(dict(link.attributes or {}), default=str) for link in span.links or ()]
    if span.status.description:
        parts.append(span.status.description)
    parts.append(json.dumps(dict(span.resource.attributes), default=str))
    return "\n".join(parts)


class StallingListener:
    """A local TCP endpoint that accepts connections and never answers (a hung Collector)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)  # held open, never read or answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self._sock.close()


class ErrorCollector:
    """A local OTLP/HTTP endpoint that answers every export with ``status`` (503 default)."""

    def __init__(self, status: int = 503) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        collector = self
        self.requests = 0
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                with collector._lock:
                    collector.requests += 1
                body = b"collector unavailable"
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
