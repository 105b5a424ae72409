"""Where a request's CPU goes as the transcript grows: cProfile over in-process requests.

``python -m bench.profile_transcript on|off [ENTRIES] [N] [CHUNKS]`` seeds ``N`` sessions of
``ENTRIES`` transcript entries (:mod:`bench.transcripts`), starts a runtime in this process
(``LLM_PROVIDER=openai`` against :mod:`bench.model_server` in its own process; telemetry
``on``: the providers the service builds, counting exporters; ``off``: the API's no-op
providers) and profiles ``N`` messages through ``orchestrator.handle``, each to a session of
its own, coder answering in ``CHUNKS`` chunks. Prints the top functions by own time and the
own time by area, in us per request (cProfile inflates absolute numbers; read the shares).
The HTTP layer (uvicorn, FastAPI, the SSE encoding) is not in this profile: benchmark 7
measures the whole service.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

from opentelemetry import _logs, metrics, trace
from pydantic import SecretStr

import telemetry
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from bench import model_server, transcripts
from bench.model_server import ModelProcess
from bench.providers import recording_providers

AREAS = (
    "openai/",
    "httpx",
    "httpcore",
    "h11/",
    "pydantic",
    "json/",
    "aiosqlite/",
    "sqlite3",
    "src/telemetry/",
    "opentelemetry/",
    "agent_runtime/",
    "asyncio/",
)


async def _requests(runtime: Runtime, entries: int, n: int, chunks: int) -> None:
    for index in range(n):
        outcome = None
        message = f"What does it do now? [chunks={chunks}]"
        async for event in runtime.orchestrator.handle(
            transcripts.session_id(entries, index), message
        ):
            if event.event == "done":
                outcome = event.data["outcome"]
        if outcome != "completed":
            raise RuntimeError(f"run ended {outcome!r}")


def main() -> None:
    variant = sys.argv[1]
    entries = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    chunks = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    warmup = 3
    model = ModelProcess()
    with tempfile.TemporaryDirectory(prefix="bench-profile-transcript-") as tmp:
        data_dir = Path(tmp)
        asyncio.run(transcripts.seed(data_dir, {entries: runs + warmup}))
        if variant == "on":
            providers = recording_providers().providers
        else:
            providers = telemetry.Providers(
                trace.NoOpTracerProvider(),
                metrics.NoOpMeterProvider(),
                _logs.NoOpLoggerProvider(),
                False,
            )
        settings = Settings(
            data_dir=data_dir,
            llm_provider="openai",
            openai_base_url=f"http://127.0.0.1:{model.port}/v1",
            openai_api_key=SecretStr("bench-no-key"),
            openai_model=model_server.MODEL,
            context_max_tokens=10_000_000,
        )
        loop = asyncio.new_event_loop()
        runtime = loop.run_until_complete(Runtime.start(settings, telemetry_providers=providers))
        try:
            # warm-up on the last sessions, then the profiled ones from the first
            for index in range(runs, runs + warmup):
                sid = transcripts.session_id(entries, index)
                loop.run_until_complete(_one(runtime, sid, chunks))
            profiler = cProfile.Profile()
            profiler.enable()
            loop.run_until_complete(_requests(runtime, entries, runs, chunks))
            profiler.disable()
        finally:
            loop.run_until_complete(runtime.close())
            loop.close()
            model.close()
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    print(f"== {variant}, {entries} entries, {chunks} chunks: top own time, us per request")
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:40]
    for (file, line, func), (_cc, calls, tottime, cumtime, _callers) in rows:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}({func})"
        print(
            f"  {tottime / runs * 1e6:9.1f} own {cumtime / runs * 1e6:9.1f} cum"
            f" {calls / runs:8.1f}x  {where}"
        )
    total = sum(v[2] for v in raw.values())
    print(f"== own time by area, us per request (all: {total / runs * 1e6:.0f})")
    for area in AREAS:
        own = sum(v[2] for (file, _line, _func), v in raw.items() if area in file)
        print(f"  {own / runs * 1e6:9.1f}  {area}")


async def _one(runtime: Runtime, session_id: str, chunks: int) -> None:
    async for _ in runtime.orchestrator.handle(session_id, f"Warm up. [chunks={chunks}]"):
        pass


if __name__ == "__main__":
    main()
