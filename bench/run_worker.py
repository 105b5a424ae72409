"""Worker for benchmark 1: the same agent run (orchestrator -> coder, ``write_file`` approved at
once) six ways in one process, run after run:

- ``on``: a runtime whose telemetry records with the providers the service builds
  (:func:`telemetry.build_providers`: its counting batch processors on counting exporters,
  content off);
- ``tracing``: a runtime that records spans only (the ``on`` tracer provider setup, the
  API's no-op meter and logger providers): what the peers' figures of issue 5 measure;
- ``off``: a runtime whose telemetry has the API's no-op providers (what
  ``OTEL_SDK_DISABLED=true`` leaves): the layer runs, nothing is recorded;
- ``unaudited``: another ``off`` runtime, built without an audit trail
  (``Runtime.start(..., audit_trail=False)``: no audit record written, stored with a
  decision or shipped): ``off - unaudited`` is what the durable audit trail costs;
- ``bare``: another ``off`` runtime, its span factories and emit call stubbed out
  (:func:`bench.bare.strip`);
- ``sdk``: the ``bare`` runtime, plus the same signals written by hand on the raw SDK
  (:mod:`bench.handwritten`, the SDK's own batch processors): the SDK's own floor for this
  trace.

Each variant but ``sdk`` (which runs on ``bare``'s) has a runtime of its own, stubbed once
before the runs: nothing is patched between runs (see :mod:`bench.bare` for what patching a
class around each run did to the other variants).
One process, variants alternating run by run, so the differences are not buried under
the drift between processes (heap layout, scheduling) that separate workers measured.

``python -m bench.run_worker``; then stdin commands ``N [v1,v2,…]`` (N rounds, each running
every variant, or the ones named, once, order rotating; answers each one's CPU per run) and
``spans`` (flush, answer the runs made and the exported span counts)."""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from opentelemetry import _logs, metrics, trace

import telemetry
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from bench.bare import strip
from bench.handwritten import HandwrittenTrace
from bench.proc import serve_commands
from bench.providers import recording_providers

MESSAGE = "Create a sorting function"
SPANS_PER_RUN = 8  # request, 2x invoke_agent, 3x chat, execute_tool, hitl.decision
LOG_RECORDS_PER_RUN = 4  # the audit records: switch, approval required, HITL requested, decision
VARIANTS = ("on", "tracing", "off", "unaudited", "bare", "sdk")


async def agent_run(runtime: Runtime, session: str) -> None:
    """One user message through the orchestrator, its approval decided at once."""
    outcome = None
    async for event in runtime.orchestrator.handle(session, MESSAGE):
        if event.event == "approval_required":
            await runtime.decide(event.data["call_id"], "APPROVE", arguments=None, feedback=None)
        elif event.event == "done":
            outcome = event.data["outcome"]
    if outcome != "completed":
        raise RuntimeError(f"run ended {outcome!r}")


class RunBench:
    def __init__(self, data_dir: Path) -> None:
        self.recording = recording_providers()
        self.traced = recording_providers()
        self.by_hand = recording_providers(layer=False)
        self.handwritten = HandwrittenTrace(
            self.by_hand.tracer_provider, self.by_hand.meter_provider, self.by_hand.logger_provider
        )
        noop = telemetry.Providers(
            trace.NoOpTracerProvider(),
            metrics.NoOpMeterProvider(),
            _logs.NoOpLoggerProvider(),
            False,
        )
        self.loop = asyncio.new_event_loop()
        self.runtimes = {
            "on": self._start(data_dir / "on", self.recording.providers),
            "tracing": self._start(
                data_dir / "tracing",
                telemetry.Providers(
                    self.traced.tracer_provider, noop.meter_provider, noop.logger_provider, False
                ),
            ),
            "off": self._start(data_dir / "off", noop),
            "unaudited": self._start(data_dir / "unaudited", noop, audit_trail=False),
            "bare": self._start(data_dir / "bare", noop),
        }
        strip(self.runtimes["bare"].telemetry)
        self.runs: Counter[str] = Counter()
        gc.collect()
        gc.freeze()  # as `agent-runtime serve` does after start-up

    def _start(
        self, data_dir: Path, providers: telemetry.Providers, *, audit_trail: bool = True
    ) -> Runtime:
        settings = Settings(data_dir=data_dir, llm_provider="scripted")
        return self.loop.run_until_complete(
            Runtime.start(settings, telemetry_providers=providers, audit_trail=audit_trail)
        )

    async def one(self, variant: str) -> float:
        """One agent run as ``variant``; its CPU in µs (every thread of the process)."""
        self.runs[variant] += 1
        session = f"{variant}-{self.runs[variant]}"
        runtime = self.runtimes["bare" if variant == "sdk" else variant]
        start = time.process_time_ns()
        await agent_run(runtime, session)
        if variant == "sdk":
            self.handwritten.record_run(session)
        return (time.process_time_ns() - start) / 1e3

    async def rounds(self, n: int, variants: tuple[str, ...] = VARIANTS) -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {v: [] for v in variants}
        for i in range(n):
            shift = i % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                samples[variant].append(await self.one(variant))
        return samples

    async def batch(self, variant: str, n: int) -> None:
        """``n`` runs of one variant (what ``bench.profile_run`` profiles)."""
        for _ in range(n):
            await self.one(variant)

    def handle(self, command: str) -> dict[str, Any]:
        if command == "spans":
            return self.loop.run_until_complete(self.spans())
        rounds, _, named = command.partition(" ")
        variants = tuple(named.split(",")) if named else VARIANTS
        return {"samples": self.loop.run_until_complete(self.rounds(int(rounds), variants))}

    async def spans(self) -> dict[str, Any]:
        counts: dict[str, Any] = {"runs": dict(self.runs)}
        for runtime in self.runtimes.values():
            await runtime.telemetry.flush()  # the audit trail's queued log records
        for name, recording in (
            ("on", self.recording),
            ("tracing", self.traced),
            ("sdk", self.by_hand),
        ):
            recording.flush()
            counts[name] = {
                "spans": recording.spans.count,
                "names": recording.spans.names,
                "logs": recording.logs.count,
            }
        return counts

    def close(self) -> None:
        for runtime in self.runtimes.values():
            self.loop.run_until_complete(runtime.close())
        self.loop.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-run-") as data_dir:
        bench = RunBench(Path(data_dir))
        try:
            serve_commands(bench.handle, {"variants": list(VARIANTS)})
        finally:
            bench.close()


if __name__ == "__main__":
    main()
