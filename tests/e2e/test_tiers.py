"""Two hosts and two gateways: whole traces, exact metrics, audit records beside the service.

The tiered stack of scripts/processes/ runs as processes on free ports: Jaeger, two gateway
Collectors (deploy/collector/otel-gateway.yaml, 10 % of the plain traces, decided 1 s after
the root span), two agent Collectors (deploy/collector/otel-agent.yaml, static resolver),
Prometheus, and two service processes, each sending to its own agent. Each gateway also
writes every span it receives, before sampling, to a file of its own (a test-only overlay):
that file says which gateway each trace reached.

The first test sends a few hundred requests of every kind, one of them waiting longer for
its human than a tail sampler's default decision_wait, and checks routing, policies and
metrics. The second kills one gateway under load and starts it again, and measures what was
lost; docs/pipeline.md reports the figures.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import (
    ASK,
    CREATE,
    FAIL,
    SERVICE_ENTRY_POINT,
    Flow,
    hex_id,
    prom_query,
    restart,
    run_flow,
    wait_for_audit_records,
    wait_until,
)
from scripts import processes

pytestmark = pytest.mark.e2e

PLAIN_PERCENTAGE = 10.0
# The tail_sampling processor's own default decision_wait: a trace waiting longer than this
# for its human is what a default configuration splits.
DEFAULT_DECISION_WAIT_S = 30.0
STREAM_ROUTE = "POST /agent/message/stream"
APPROVAL_ROUTE = "POST /v1/approvals/{call_id}"
SETTLE_DEADLINE_S = 90.0

# Every span a gateway receives, before sampling, into its own file. With rotation the file
# exporter writes through on each export (no buffer a SIGKILL could lose) and a restarted
# gateway appends to the file it had.
TAP_OVERLAY = """
exporters:
  file/received:
    path: ${env:OTELCOL_STORAGE_DIR}/../received.jsonl
    format: json
    rotation:
      max_megabytes: 1000
service:
  pipelines:
    traces/received:
      receivers: [otlp]
      exporters: [file/received]
"""


@dataclass
class Tiers:
    stack: processes.TieredStack
    urls: list[str]

    @property
    def jaeger_api(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports.jaeger.query_http}"

    @property
    def prometheus_api(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports.prometheus}"

    def taps(self) -> list[Path]:
        return [
            self.stack.gateway_state(j) / "received.jsonl" for j in range(len(self.stack.gateways))
        ]


@pytest.fixture(scope="module")
def tiers(
    collector_binary: Path,
    jaeger_binary: Path,
    prometheus_binary: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Tiers]:
    if not SERVICE_ENTRY_POINT.exists():
        pytest.fail(f"{SERVICE_ENTRY_POINT} is missing: run `uv sync` (make sync) first")
    state = tmp_path_factory.mktemp("tiers")
    tap = state / "tap.yaml"
    tap.write_text(TAP_OVERLAY)
    stack = processes.tiered_stack(
        processes.TierPorts.free(hosts=2, gateways=2),
        state,
        collector=collector_binary,
        jaeger=jaeger_binary,
        prometheus=prometheus_binary,
        service_argv=[str(SERVICE_ENTRY_POINT), "serve"],
        pid_files=False,
        gateway_env={
            "OTELCOL_TAIL_SAMPLING_PERCENTAGE": str(PLAIN_PERCENTAGE),
            "OTELCOL_TAIL_SAMPLING_WAIT_AFTER_ROOT": "1s",
        },
        gateway_configs=[processes.GATEWAY_CONFIG, tap],
        service_extra_env={"AGENT_RUNTIME_AUDIT_RESEND_INTERVAL_S": "2"},
    )
    processes.start_all(stack.processes)
    try:
        yield Tiers(stack, [f"http://127.0.0.1:{port}" for port in stack.ports.services])
    finally:
        processes.stop_all(stack.processes)


# --- what the gateways received, what Jaeger kept -----------------------------------------


def received(tiers: Tiers) -> dict[str, dict[int, set[str]]]:
    """trace id -> gateway index -> span ids, from the gateways' tap files."""
    found: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for index, path in enumerate(tiers.taps()):
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                payload = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line still being written
            for resource_spans in payload.get("resourceSpans", []):
                for scope_spans in resource_spans.get("scopeSpans", []):
                    for span in scope_spans.get("spans", []):
                        found[span["traceId"].lower()][index].add(span["spanId"].lower())
    return found


def jaeger_snapshot(tiers: Tiers, trace_ids: set[str]) -> dict[str, list[str]]:
    """trace id -> the span ids Jaeger has for it, sorted (a list: a span stored twice shows
    twice; Jaeger returns a trace's spans in no fixed order)."""
    snapshot: dict[str, list[str]] = {}
    with httpx.Client(base_url=tiers.jaeger_api, timeout=5) as client:
        for trace_id in trace_ids:
            response = client.get(f"/api/traces/{trace_id}")
            if response.status_code == 404:
                snapshot[trace_id] = []
                continue
            response.raise_for_status()
            data = response.json().get("data") or []
            snapshot[trace_id] = sorted(
                hex_id(s["spanID"]) for trace in data for s in trace["spans"]
            )
    return snapshot


def wait_jaeger_stable(
    tiers: Tiers, trace_ids: set[str], whole: dict[str, set[str]]
) -> dict[str, list[str]]:
    """Jaeger's view of ``trace_ids`` once every trace of ``whole`` (trace id -> its span
    ids) is there in full and nothing more arrived for a second (the gateways' and Jaeger's
    own batches are flushed by then)."""
    last: list[dict[str, list[str]]] = []

    def incomplete(snapshot: dict[str, list[str]]) -> list[str]:
        return [trace_id for trace_id, ids in whole.items() if set(snapshot[trace_id]) != ids]

    def probe() -> dict[str, list[str]] | None:
        snapshot = jaeger_snapshot(tiers, trace_ids)
        stable = bool(last) and last[-1] == snapshot
        last[:] = [snapshot]
        return snapshot if stable and not incomplete(snapshot) else None

    try:
        return wait_until(
            probe, timeout=SETTLE_DEADLINE_S, what="Jaeger to hold the kept traces", interval=1.0
        )
    except TimeoutError as exc:
        missing = incomplete(last[-1]) if last else sorted(whole)
        detail = {
            trace_id: (len(last[-1][trace_id]) if last else 0, len(whole[trace_id]))
            for trace_id in missing[:10]
        }
        raise AssertionError(
            f"{exc}: {len(missing)} of {len(whole)} traces not whole in Jaeger "
            f"(spans in Jaeger, spans sent): {detail}"
        ) from None


def _metric(url: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples (matching ``labels``) on a Collector's own /metrics."""
    total = 0.0
    for line in httpx.get(url, timeout=5).text.splitlines():
        if line.startswith((f"{name}{{", f"{name} ")) and all(
            f'{key}="{value}"' in line for key, value in labels.items()
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def settled(tiers: Tiers) -> bool:
    """Nothing waits in the pipeline: the agents' queues are empty, the gateways hold no
    undecided trace and their Jaeger queues are empty."""
    ports = tiers.stack.ports
    for agent in ports.agents:
        url = f"http://127.0.0.1:{agent.telemetry}/metrics"
        if _metric(url, "otelcol_exporter_queue_size", exporter="load_balancing") > 0:
            return False
    for gateway in ports.gateways:
        url = f"http://127.0.0.1:{gateway.telemetry}/metrics"
        if _metric(url, "otelcol_processor_tail_sampling_sampling_traces_on_memory") > 0:
            return False
        if _metric(url, "otelcol_exporter_queue_size") > 0:
            return False
    return True


def wait_received(tiers: Tiers, trace_ids: set[str]) -> dict[str, dict[int, set[str]]]:
    """Every trace reached a gateway, and the pipeline then emptied (every decision taken
    and exported)."""

    def probe() -> dict[str, dict[int, set[str]]] | None:
        found = received(tiers)
        return found if trace_ids <= set(found) and settled(tiers) else None

    return wait_until(
        probe, timeout=SETTLE_DEADLINE_S, what=f"{len(trace_ids)} traces received and decided"
    )


async def all_audit_records(base_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.get("/v1/audit", params={"limit": 10_000})
    response.raise_for_status()
    body = response.json()
    if isinstance(body, dict):  # {"records": [...]} or the like: the one list in it
        body = next(value for value in body.values() if isinstance(value, list))
    assert isinstance(body, list)
    return body


# --- load -----------------------------------------------------------------------------------


@dataclass
class Sent:
    """The requests of one test, by kind, with the decision requests' own trace ids."""

    flows: dict[str, list[Flow]] = field(default_factory=lambda: defaultdict(list))
    ended: dict[str, float] = field(default_factory=dict)  # trace id -> when its stream ended

    def add(self, kind: str, flow: Flow) -> None:
        if kind != "error":  # the [fail] requests end with an error event, on purpose
            flow.assert_ok()
        self.flows[kind].append(flow)
        self.ended[flow.correlation_id] = time.monotonic()

    def trace_ids(self, *kinds: str) -> set[str]:
        return {f.correlation_id for kind in kinds for f in self.flows[kind]}

    def decision_trace_ids(self) -> set[str]:
        return {
            response.headers["x-correlation-id"]
            for flows in self.flows.values()
            for flow in flows
            for response in flow.decisions
        }

    def all_trace_ids(self) -> set[str]:
        return self.trace_ids(*self.flows) | self.decision_trace_ids()

    @property
    def streams(self) -> int:
        return sum(len(flows) for flows in self.flows.values())

    @property
    def decisions(self) -> int:
        return len(self.decision_trace_ids())


MIX: list[tuple[str, str, str]] = (
    [("plain", ASK, "APPROVE")] * 150
    + [("approved", CREATE, "APPROVE")] * 20
    + [("rejected", CREATE, "REJECT")] * 12
    + [("edited", CREATE, "EDIT")] * 6
    + [("error", FAIL, "APPROVE")] * 12
)


async def run_mix(
    urls: list[str],
    mix: list[tuple[str, str, str]],
    sent: Sent,
    *,
    concurrency: int = 6,
    after_each: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Send ``mix`` round-robin to the services, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(index: int, kind: str, message: str, decision: str) -> None:
        nonlocal done
        async with gate:
            flow = await run_flow(urls[index % len(urls)], message, decision=decision)
        sent.add(kind, flow)
        done += 1
        if after_each is not None:
            await after_each(done)

    await asyncio.gather(*(one(i, *item) for i, item in enumerate(mix)))


def binomial_bound(n: int, percentage: float, z: float = 4.0) -> tuple[float, float]:
    """[low, high] of the kept count: mean ± z standard deviations (z=4: a false alarm
    about once in 15,000 runs)."""
    p = percentage / 100
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return mean - z * sd - 1, mean + z * sd + 1


# --- the tests --------------------------------------------------------------------------------


async def test_two_tiers_keep_whole_traces_by_policy_and_exact_metrics(tiers: Tiers) -> None:
    sent = Sent()

    async def a_slow_human() -> None:
        # The scenario, not synchronisation: a human who answers after the default
        # decision_wait has passed, while the load below runs.
        await asyncio.sleep(DEFAULT_DECISION_WAIT_S + 2)

    async def long_waits() -> None:
        rejected, approved = await asyncio.gather(
            run_flow(tiers.urls[0], CREATE, decision="REJECT", before_decision=a_slow_human),
            run_flow(tiers.urls[1], CREATE, decision="APPROVE", before_decision=a_slow_human),
        )
        sent.add("long-rejected", rejected)
        sent.add("long-approved", approved)

    started = time.monotonic()
    await asyncio.gather(long_waits(), run_mix(tiers.urls, MIX, sent))
    assert time.monotonic() - started > DEFAULT_DECISION_WAIT_S
    for flow in sent.flows["error"]:
        assert flow.of("error") and flow.names()[-1:] == ["done"], flow.names()

    everything = sent.all_trace_ids()
    assert len(everything) >= 200, len(everything)
    found = await asyncio.to_thread(wait_received, tiers, everything)

    # 1. No trace split: every trace's spans reached exactly one gateway.
    split = {trace_id: sorted(by) for trace_id, by in found.items() if len(by) != 1}
    assert not split, f"{len(split)} of {len(found)} traces reached both gateways: {split}"
    both = {next(iter(by)) for by in found.values()}
    assert both == {0, 1}, "the trace ids were not spread over both gateways"

    def spans(trace_id: str) -> set[str]:
        return next(iter(found[trace_id].values()))

    # 2. Every error, REJECT and EDIT trace is in Jaeger, whole: the long REJECT included,
    #    whose human answered after the default decision_wait.
    must_keep = sent.trace_ids("error", "rejected", "edited", "long-rejected")
    snapshot = await asyncio.to_thread(
        wait_jaeger_stable, tiers, everything, {trace_id: spans(trace_id) for trace_id in must_keep}
    )
    for trace_id in must_keep:
        assert sorted(snapshot[trace_id]) == sorted(spans(trace_id)), trace_id

    # 3. The rest: whole or not at all, and the kept share within the binomial bound.
    plain = sent.trace_ids("plain", "approved") | sent.decision_trace_ids()
    kept = 0
    for trace_id in plain | sent.trace_ids("long-approved"):
        in_jaeger = sorted(snapshot[trace_id])
        assert in_jaeger in ([], sorted(spans(trace_id))), f"{trace_id} arrived in part"
        kept += bool(in_jaeger) and trace_id in plain
    low, high = binomial_bound(len(plain), PLAIN_PERCENTAGE)
    print(f"\ntiers: {len(everything)} traces, kept {kept} of {len(plain)} plain ones")
    assert low <= kept <= high, f"kept {kept} of {len(plain)} plain traces, not in [{low}, {high}]"

    # 4. The span metrics count every request, exactly, whatever the gateways kept.
    for route, count in ((STREAM_ROUTE, sent.streams), (APPROVAL_ROUTE, sent.decisions)):
        expr = (
            f'sum(traces_span_metrics_calls_total{{span_kind="SPAN_KIND_SERVER",'
            f'span_name="{route}"}})'
        )

        def counted(expr: str = expr, count: int = count) -> bool:
            result = prom_query(tiers, expr)
            return bool(result) and float(result[0]["value"][1]) >= count

        wait_until(counted, timeout=60, what=f"{count} requests counted by {expr}")
        assert float(prom_query(tiers, expr)[0]["value"][1]) == count, expr
    # Both agents computed them, each from its own host's spans.
    instances = prom_query(
        tiers, "count by (collector_instance_id) (traces_span_metrics_calls_total)"
    )
    assert len(instances) == 2, instances

    # 5. Every audit record is in the audit file of its own host.
    for url, audit_file in zip(tiers.urls, tiers.stack.audit_files(), strict=True):
        records = await all_audit_records(url)
        assert records
        await asyncio.to_thread(wait_for_audit_records, [audit_file], records, 60)


async def test_a_gateway_killed_under_load_loses_only_its_undecided_traces(
    tiers: Tiers, record_property: Callable[[str, object], None]
) -> None:
    """Gateway 1 is SIGKILLed under load and started again. The traces the agents route to
    gateway 2 are untouched; of gateway 1's, those it held undecided die with it (a trace
    whose later spans came after its restart arrives in part); the audit trail loses nothing.
    """
    gateway = tiers.stack.gateways[0]
    sent = Sent()
    per_phase = 40
    mix = [("error", FAIL, "APPROVE"), ("rejected", CREATE, "REJECT")] * (3 * per_phase // 2)
    marks: dict[str, float] = {}

    async def kill_and_restart(done: int) -> None:
        if done == per_phase and "kill" not in marks:
            marks["kill"] = time.monotonic()
            await asyncio.to_thread(gateway.kill)
        elif done == 2 * per_phase and "restart" not in marks:
            marks["restart"] = time.monotonic()
            await asyncio.to_thread(restart, gateway)
            marks["healthy"] = time.monotonic()

    started = time.monotonic()
    await run_mix(tiers.urls, mix, sent, concurrency=4, after_each=kill_and_restart)
    elapsed = time.monotonic() - started
    assert "healthy" in marks, marks
    assert gateway.running
    for flow in sent.flows["rejected"]:
        flow.assert_ok()  # no request failed because a gateway died

    streams = sent.trace_ids("error", "rejected")
    found = await asyncio.to_thread(wait_received, tiers, streams)
    by_gateway: dict[int, list[str]] = defaultdict(list)
    for trace_id in streams:
        # A trace whose spans reached gateway 1 before and after its restart counts as
        # routed there (the routing itself never changed: the static resolver).
        routed = found[trace_id]
        assert len(routed) == 1, (trace_id, sorted(routed))
        by_gateway[next(iter(routed))].append(trace_id)

    survivors = set(by_gateway[1])
    snapshot = await asyncio.to_thread(
        wait_jaeger_stable, tiers, streams, {trace_id: found[trace_id][1] for trace_id in survivors}
    )

    def phase(trace_id: str) -> str:
        """When the request ended: before the kill, while gateway 1 was down, after."""
        ended = sent.ended[trace_id]
        if ended < marks["kill"]:
            return "before"
        return "down" if ended < marks["healthy"] else "after"

    outcome: dict[int, dict[str, int]] = {}
    lost_by_phase: dict[str, int] = defaultdict(int)
    for index, trace_ids in sorted(by_gateway.items()):
        counts = {"whole": 0, "partial": 0, "missing": 0, "duplicated": 0}
        for trace_id in trace_ids:
            in_jaeger, received_ids = snapshot[trace_id], found[trace_id][index]
            if set(in_jaeger) == received_ids:
                counts["whole"] += 1
            else:
                counts["partial" if in_jaeger else "missing"] += 1
                lost_by_phase[phase(trace_id)] += 1
            counts["duplicated"] += len(in_jaeger) != len(set(in_jaeger))
        outcome[index + 1] = counts
    sent_to_1 = defaultdict(int)
    for trace_id in by_gateway[0]:
        sent_to_1[phase(trace_id)] += 1
    downtime, start_s = marks["healthy"] - marks["kill"], marks["healthy"] - marks["restart"]
    measured = {
        "downtime_s": round(downtime, 1),
        "by_gateway": outcome,
        "gateway_1_by_phase": dict(sent_to_1),
        "lost_by_phase": dict(lost_by_phase),
    }
    record_property("gateway_kill", measured)
    print(
        f"\ngateway kill: {len(streams)} must-keep traces in {elapsed:.1f} s; gateway 1 down "
        f"{downtime:.1f} s (its start took {start_s:.1f} s); by gateway: {outcome}; routed to "
        f"gateway 1 by when they ended: {dict(sent_to_1)}, not whole: {dict(lost_by_phase)}"
    )

    # The surviving gateway's traces are all there, whole.
    assert outcome[2]["whole"] == len(by_gateway[1]), outcome
    # The killed gateway loses at most what it held undecided when it died.
    assert outcome[1]["whole"] > 0, outcome

    # No audit record is lost: they never pass through a gateway.
    for url, audit_file in zip(tiers.urls, tiers.stack.audit_files(), strict=True):
        records = await all_audit_records(url)
        await asyncio.to_thread(wait_for_audit_records, [audit_file], records, 60)
