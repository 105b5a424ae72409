"""Benchmark 4: per request end to end. The service under uvicorn in its own process,
telemetry fully on (OTLP/HTTP to a local receiver that answers 200; FastAPI server spans,
the agent/chat/tool spans, metrics, audit) vs telemetry off (``OTEL_SDK_DISABLED=true``), both
running at once and loaded in alternating phases by ``bench.loadgen`` in another process.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.load import PhaseStats, interleave
from bench.proc import Worker
from bench.service import Receiver, Service, telemetry_env

FLOWS = ("ask", "coder")


@dataclass(frozen=True, slots=True)
class RequestResult:
    by_flow: dict[str, dict[str, PhaseStats]]

    def ratio(self, flow: str) -> float:
        on, off = self.by_flow[flow]["on"], self.by_flow[flow]["off"]
        return on.rps_summary.median / off.rps_summary.median if off.rps else 0.0

    @property
    def throughput_ratio(self) -> float:
        """The worse of the two flows."""
        return min(self.ratio(flow) for flow in FLOWS)


def measure(*, quick: bool, concurrency: int = 8) -> RequestResult:
    rounds, seconds, cap = (1, 1.0, 20) if quick else (4, 5.0, 100_000)
    receiver = Receiver("ok")
    services: dict[str, Service] = {}
    loadgen = Worker("bench.loadgen")
    try:
        services["on"] = Service("on", telemetry_env(receiver.port))
        services["off"] = Service("off", telemetry_env(None))
        by_flow = {
            flow: interleave(
                loadgen,
                services,
                flow,
                rounds=rounds,
                concurrency=concurrency,
                seconds=seconds,
                cap=cap,
            )
            for flow in FLOWS
        }
    finally:
        loadgen.close()
        for service in services.values():
            service.close()
        receiver.close()
    result = RequestResult(by_flow)
    print(f"4. per request end to end ({concurrency} concurrent users, closed loop)")
    for flow in FLOWS:
        for variant in ("on", "off"):
            print(by_flow[flow][variant].line(f"{flow} telemetry {variant}"))
        print(f"  {flow}: throughput on/off = {result.ratio(flow):.2f}x (goal >= 0.80x)")
    return result
