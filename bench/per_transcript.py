"""Benchmark 7: what a request costs as its session's transcript grows, and what one
streamed chunk costs.

The real service under uvicorn (``agent-runtime serve``, ``LLM_PROVIDER=openai``) in its own
process, telemetry on (OTLP/HTTP to ``bench.receiver``) and off (``OTEL_SDK_DISABLED``), both
up at once. The model is :mod:`bench.model_server`, an OpenAI-compatible server in a third
process answering over the real wire: its CPU is never in the service's, so nothing is
subtracted. Server CPU is read from ``/proc/<pid>/stat`` (every thread) around each phase;
this process sends the phase's requests one after the other.

- Per request against a session of N prior transcript entries (:mod:`bench.transcripts`,
  seeded through ``SessionManager.add_message``; a fresh session for every request, so none
  grows during a phase). A request is one user message that the orchestrator routes to
  coder, who answers in text: two model calls, each carrying the whole transcript (the
  context budget is set high enough that nothing is trimmed, and the model server's count
  of the messages it received is checked). The marginal CPU per KB is the least-squares
  slope over the sizes, KB being the JSON of the ``messages`` of one model call as the model
  server received it; beside it the slope of ``json.dumps`` + ``json.loads`` of the same
  transcripts, timed here in the same rounds.
- Per streamed chunk: coder answers in 1,000 chunks against 10 (fresh sessions); the
  difference per chunk, beside ``json.loads`` of one such chunk's JSON plus writing its
  ``text`` SSE event (``fastapi.sse.format_sse_event``), timed here in the same rounds.

Every phase and baseline interleaves round by round, the order rotating.
``python -m bench.per_transcript [--quick] [--rounds R] [--compare DIR]`` runs it alone;
``--compare`` adds the service from another checkout's ``src/`` (``base-on``,
``base-off``), measured in the same rounds: a before/after of a change in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi.sse import format_sse_event

from bench import model_server, transcripts
from bench.loadgen import Connection
from bench.model_server import ModelProcess
from bench.proc import ROOT
from bench.service import Receiver, Service, telemetry_env
from bench.transcript_figures import (
    Plan,
    Samples,
    TranscriptResult,
    add,
    report,
    sent_messages,
)

QUESTION = "What does it do now?"


@dataclass(frozen=True, slots=True)
class Variant:
    """One service: telemetry on or off, from this tree's ``src/`` or another's."""

    name: str
    telemetry: bool
    src: Path | None = None


HEADLINE = (Variant("on", True), Variant("off", False))


FULL = Plan(rounds=5, sizes={10: 30, 100: 20, 1000: 6}, chunks=(10, 1000), chunk_requests=4)
QUICK = Plan(rounds=1, sizes={10: 2, 50: 2}, chunks=(5, 50), chunk_requests=1)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readline()).strip(), 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return bytes(body)
        body += data[:-2]


def _data(block: str) -> dict[str, Any]:
    """The JSON ``data`` of one SSE event block."""
    for line in block.split("\n"):
        if line.startswith("data:"):
            data: dict[str, Any] = json.loads(line[5:])
            return data
    return {}


async def send_message(conn: Connection, session_id: str, text: str) -> int:
    """One message streamed to its ``done`` (which must say ``completed``); returns the
    number of ``text`` events."""
    status, reader = await conn.request(
        "/agent/message/stream", {"session_id": session_id, "message": text}
    )
    body = (await _read_chunked(reader)).decode()
    if status != 200:
        raise RuntimeError(f"the stream answered {status}: {body[:200]}")
    events = [block for block in body.replace("\r\n", "\n").split("\n\n") if block]
    last = events[-1] if events else ""
    if not last.startswith("event: done") or _data(last).get("outcome") != "completed":
        raise RuntimeError(f"the run did not complete: {last!r}")
    return sum(1 for block in events if block.startswith("event: text"))


def _phase(
    loop: asyncio.AbstractEventLoop, service: Service, requests: Sequence[tuple[str, str]]
) -> tuple[float, int]:
    """``requests`` (session id, message) one after the other: the server's CPU per request
    in us, and the ``text`` events received in all."""

    async def send() -> int:
        conn = Connection(service.port)
        try:
            return sum([await send_message(conn, sid, text) for sid, text in requests])
        finally:
            await conn.close()

    before = service.cpu_s()
    texts = loop.run_until_complete(send())
    return (service.cpu_s() - before) / len(requests) * 1e6, texts


def floor_us(fn: Callable[[], object], calls: int, batches: int = 5) -> float:
    """CPU of one call of ``fn`` in us: the median over ``batches`` of ``calls`` calls."""
    per_call = []
    for _ in range(batches):
        start = time.process_time_ns()
        for _ in range(calls):
            fn()
        per_call.append((time.process_time_ns() - start) / 1e3 / calls)
    return statistics.median(per_call)


def json_round_trip(messages: list[Any]) -> None:
    """The JSON floor of a transcript: encoded once, decoded once."""
    json.loads(json.dumps(messages))


def chunk_floor(raw: str) -> None:
    """The floor of one streamed chunk: its JSON parsed, its SSE event written."""
    delta = json.loads(raw)["choices"][0]["delta"]["content"]
    format_sse_event(data_str=json.dumps({"agent": "coder", "delta": delta}), event="text")


def _check_calls(calls: list[dict[str, Any]], requests: int, entries: int | None) -> float:
    """Two model calls per request (the router's, coder's), each with the whole transcript
    when ``entries`` says how long it is; the KB of coder's ``messages``."""
    if len(calls) != 2 * requests:
        raise AssertionError(f"expected {2 * requests} model calls, got {len(calls)}")
    if entries is not None:
        wrong = sorted({c["messages"] for c in calls} - {sent_messages(entries)})
        if wrong:
            raise AssertionError(
                f"{entries} entries: {sent_messages(entries)} messages expected, got {wrong}"
            )
    coder = [c["messages_bytes"] for c in calls if not c["router"]]
    return float(statistics.median(coder)) / 1024


def _service(variant: Variant, data_dir: Path, model_port: int, receiver_port: int) -> Service:
    env = {
        "AGENT_RUNTIME_DATA_DIR": str(data_dir),
        "LLM_PROVIDER": "openai",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{model_port}/v1",
        "OPENAI_API_KEY": "bench-no-key",
        "OPENAI_MODEL": model_server.MODEL,
        "AGENT_RUNTIME_CONTEXT_MAX_TOKENS": "10000000",
    }
    if variant.src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(variant.src), str(ROOT)])
    port = receiver_port if variant.telemetry else None
    return Service(f"transcript-{variant.name}", telemetry_env(port, **env))


class _Runner:
    def __init__(
        self,
        plan: Plan,
        model: ModelProcess,
        services: dict[str, Service],
        wires: dict[int, list[Any]],
    ) -> None:
        self.plan = plan
        self.model = model
        self.services = services
        self.wires = wires
        self.samples = Samples()
        self.loop = asyncio.new_event_loop()
        self._used = dict.fromkeys(itertools.product(services, plan.sizes), 0)
        self._ids = itertools.count()
        self._chunk_json = model_server.text_chunk_json(1)

    def run(self) -> Samples:
        try:
            for name, service in self.services.items():  # one of each first, not counted
                for size in self.plan.sizes:
                    spare = self.plan.rounds * self.plan.sizes[size]
                    _phase(self.loop, service, [self._request(size, spare)])
                for n in self.plan.chunks:
                    _phase(self.loop, service, [self._streaming(name, n)])
            self.model.calls()
            self._idle()
            steps = [("entries", size) for size in self.plan.sizes]
            steps += [("chunks", n) for n in self.plan.chunks]
            order = [(name, step) for step in steps for name in self.services]
            for r in range(self.plan.rounds):
                shift = r * 3 % len(order)
                for name, (kind, value) in order[shift:] + order[:shift]:
                    if kind == "entries":
                        self._entries(name, value)
                    else:
                        self._chunks(name, value)
            return self.samples
        finally:
            self.loop.close()

    def _request(self, entries: int, index: int) -> tuple[str, str]:
        return transcripts.session_id(entries, index), f"{QUESTION} [chunks=8]"

    def _streaming(self, name: str, chunks: int) -> tuple[str, str]:
        return f"bench-chunks-{name}-{next(self._ids)}", f"Explain it. [chunks={chunks}]"

    def _idle(self) -> None:
        """Each service's CPU while nothing is asked of it (background threads, timers)."""
        before = {name: service.cpu_s() for name, service in self.services.items()}
        start = time.monotonic()
        time.sleep(3.0)  # the idle window measured, not a synchronisation
        elapsed = time.monotonic() - start
        for name, service in self.services.items():
            used = service.cpu_s() - before[name]
            self.samples.idle_us_per_s[name] = used / elapsed * 1e6

    def _entries(self, name: str, entries: int) -> None:
        n = self.plan.sizes[entries]
        first = self._used[name, entries]
        self._used[name, entries] = first + n
        requests = [self._request(entries, i) for i in range(first, first + n)]
        cpu, _ = _phase(self.loop, self.services[name], requests)
        add(self.samples.cpu_us, (name, entries), cpu)
        self.samples.kb[entries] = _check_calls(self.model.calls(), n, entries)
        wire = self.wires[entries]
        calls = max(1, 4000 // len(wire))
        add(self.samples.json_us, entries, floor_us(lambda: json_round_trip(wire), calls))

    def _chunks(self, name: str, chunks: int) -> None:
        n = self.plan.chunk_requests
        requests = [self._streaming(name, chunks) for _ in range(n)]
        cpu, texts = _phase(self.loop, self.services[name], requests)
        if texts != n * chunks:
            raise AssertionError(f"expected {n * chunks} text events, got {texts}")
        _check_calls(self.model.calls(), n, None)
        add(self.samples.chunk_cpu_us, (name, chunks), cpu)
        raw = self._chunk_json
        self.samples.chunk_floor_us.append(floor_us(lambda: chunk_floor(raw), 2000))


def measure(
    *, quick: bool, plan: Plan | None = None, compare: Path | None = None
) -> TranscriptResult:
    """Run the benchmark and print it (``plan``: :data:`QUICK` with ``quick``, else
    :data:`FULL`; ``compare``: another checkout whose service runs beside, as ``base-on``
    and ``base-off``)."""
    plan = plan or (QUICK if quick else FULL)
    chosen = list(HEADLINE)
    if compare is not None:
        chosen += [replace(v, name=f"base-{v.name}", src=compare / "src") for v in HEADLINE]
    with tempfile.TemporaryDirectory(prefix="bench-transcript-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        counts = {size: plan.rounds * n + 1 for size, n in plan.sizes.items()}
        seeded = asyncio.run(transcripts.seed(work / "seeded", counts))
        wires = {size: transcripts.wire_messages(entries) for size, entries in seeded.items()}
        seed_s = time.monotonic() - started
        model = ModelProcess()
        receiver = Receiver("ok")
        services: dict[str, Service] = {}
        try:
            for variant in chosen:
                data_dir = work / variant.name
                transcripts.copy_store(work / "seeded", data_dir)
                services[variant.name] = _service(variant, data_dir, model.port, receiver.port)
            samples = _Runner(plan, model, services, wires).run()
        finally:
            for service in services.values():
                service.close()
            receiver.close()
            model.close()
    return report(plan, samples, [v.name for v in chosen], seed_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.per_transcript", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks it runs")
    parser.add_argument("--rounds", type=int, help="rounds (default: the plan's)")
    parser.add_argument("--compare", type=Path, help="another checkout, run beside (base-*)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = replace(plan, rounds=args.rounds)
    result = measure(quick=args.quick, plan=plan, compare=args.compare)
    print(f"  kb_ratio={result.kb_ratio:.2f} chunk_ratio={result.chunk_ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
