"""Worker for benchmark 1: one agent run (orchestrator -> coder, write_file approved at
once) in process, with telemetry ``on`` (SDK, batch processors, counting exporters, content
off), ``off`` (``OTEL_SDK_DISABLED``: API no-op providers), ``bare`` (layer stubbed out) or
``sdk`` (layer stubbed out, the same signals written by hand on the raw SDK after each run:
:mod:`bench.handwritten`).

``python -m bench.run_worker VARIANT``; then stdin commands ``N`` (run N times, answer the
CPU per run) and ``spans`` (flush, answer exported span counts)."""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import telemetry
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from bench.handwritten import HandwrittenTrace
from bench.proc import serve_commands
from bench.providers import Recording, recording_providers

MESSAGE = "Create a sorting function"
SPANS_PER_RUN = 8  # request, 2x invoke_agent, 3x chat, execute_tool, hitl.decision


class RunBench:
    def __init__(self, variant: str, data_dir: Path) -> None:
        from bench.experiments import apply_from_env

        self.variant = variant
        self.patches = apply_from_env()
        self.recording: Recording | None = None
        self.handwritten: HandwrittenTrace | None = None
        if variant == "on":
            self.recording = recording_providers()
            telemetry.configure(
                tracer_provider=self.recording.tracer_provider,
                meter_provider=self.recording.meter_provider,
                logger_provider=self.recording.logger_provider,
            )
        elif variant == "off":
            telemetry.configure()  # OTEL_SDK_DISABLED=true in the environment
        else:
            from bench.bare import strip_telemetry

            strip_telemetry()
            if variant == "sdk":
                self.recording = recording_providers()
                self.handwritten = HandwrittenTrace(
                    self.recording.tracer_provider,
                    self.recording.meter_provider,
                    self.recording.logger_provider,
                )
        self.loop = asyncio.new_event_loop()
        settings = Settings(data_dir=data_dir, llm_provider="scripted")
        self.runtime: Runtime = self.loop.run_until_complete(Runtime.start(settings))
        self.count = 0
        gc.collect()
        gc.freeze()  # as `agent-runtime serve` does after start-up

    async def one(self) -> None:
        self.count += 1
        session = f"{self.variant}-{self.count}"
        outcome = None
        async for event in self.runtime.orchestrator.handle(session, MESSAGE):
            if event.event == "approval_required":
                await self.runtime.decide(
                    event.data["call_id"], "APPROVE", arguments=None, feedback=None
                )
            elif event.event == "done":
                outcome = event.data["outcome"]
        if outcome != "completed":
            raise RuntimeError(f"run ended {outcome!r}")
        if self.handwritten is not None:
            self.handwritten.record_run(session)

    async def batch(self, n: int) -> list[float]:
        samples = []
        for _ in range(n):
            start = time.process_time_ns()
            await self.one()
            samples.append((time.process_time_ns() - start) / 1e3)
        return samples

    def handle(self, command: str) -> dict[str, Any]:
        if command == "spans":
            return self.spans()
        n = int(command)
        gc.collect()
        start = time.process_time_ns()
        samples = self.loop.run_until_complete(self.batch(n))
        total_us = (time.process_time_ns() - start) / 1e3
        return {"runs": samples, "mean_us": total_us / n}

    def close(self) -> None:
        self.loop.run_until_complete(self.runtime.close())
        self.loop.close()

    def spans(self) -> dict[str, Any]:
        if self.recording is None:
            return {"spans": 0, "runs": self.count, "logs": 0, "names": {}}
        self.recording.flush()
        return {
            "spans": self.recording.spans.count,
            "names": self.recording.spans.names,
            "logs": self.recording.logs.count,
            "runs": self.count,
        }


def main() -> None:
    variant = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix=f"bench-run-{variant}-") as data_dir:
        bench = RunBench(variant, Path(data_dir))
        try:
            serve_commands(bench.handle, {"variant": variant})
        finally:
            bench.close()


if __name__ == "__main__":
    main()
