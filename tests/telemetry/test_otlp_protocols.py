"""The per-signal OTLP variables work as the SDK defines them (docs/architecture.md): traces over
http/protobuf to one endpoint while metrics go over gRPC to another, each received by a real
receiver on 127.0.0.1 (an OTLP/HTTP receiver on ``http.server``, an OTLP/gRPC one on
grpcio's server with the opentelemetry-proto service stubs)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION
from scripts.processes import free_port  # nothing listens there: connections are refused

import telemetry
from telemetry import names as n
from tests.support.fixtures import hub_in


@dataclass
class Received:
    """What a receiver got: one entry per export request."""

    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def http_receiver() -> Iterator[tuple[int, Received]]:
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with received.lock:
                received.paths.append(self.path)
                received.headers.append({k.lower(): v for k, v in self.headers.items()})
                received.bodies.append(body)
            answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def grpc_metrics_receiver() -> Iterator[tuple[int, Received]]:
    received = Received()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(
            self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: Any
        ) -> metrics_service_pb2.ExportMetricsServiceResponse:
            with received.lock:
                received.paths.append("opentelemetry.proto.collector.metrics.v1.MetricsService")
                received.headers.append(dict(context.invocation_metadata()))
                received.bodies.append(request.SerializeToString())
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, received
    finally:
        server.stop(grace=None)


async def test_traces_over_http_and_metrics_over_grpc_each_to_its_own_endpoint(
    http_receiver: tuple[int, Received],
    grpc_metrics_receiver: tuple[int, Received],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    http_port, traces = http_receiver
    grpc_port, metrics = grpc_metrics_receiver
    for variable, value in {
        # the general ones: a protocol the traces inherit, an endpoint nobody should use
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{http_port}/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-signal=traces",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{grpc_port}",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x-signal=metrics",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",  # exported at shutdown, not on a timer
    }.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    providers = telemetry.build_providers(service_version="1.2.3")
    try:
        async with hub_in(tmp_path, providers=providers) as hub:
            request = telemetry.RequestTrace(hub.spans, "s1")
            request.agent("coder").stop()
            request.finish(n.OUTCOME_COMPLETED)
    finally:
        assert telemetry.shutdown(providers, deadline_s=20)

    assert traces.paths and set(traces.paths) == {"/v1/traces"}
    assert {headers.get("x-signal") for headers in traces.headers} == {"traces"}
    assert {headers.get("content-type") for headers in traces.headers} == {"application/x-protobuf"}
    exported = trace_service_pb2.ExportTraceServiceRequest()
    names: set[str] = set()
    resource: dict[str, str] = {}
    for body in traces.bodies:
        exported.ParseFromString(body)
        for resource_spans in exported.resource_spans:
            resource |= {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                names |= {span.name for span in scope_spans.spans}
    assert names == {n.SPAN_AGENT_REQUEST, "invoke_agent coder"}
    assert (resource[SERVICE_NAME], resource[SERVICE_VERSION]) == ("agent-runtime", "1.2.3")

    assert metrics.paths
    assert {headers.get("x-signal") for headers in metrics.headers} == {"metrics"}
    metric_names: set[str] = set()
    for body in metrics.bodies:
        request_pb = metrics_service_pb2.ExportMetricsServiceRequest()
        request_pb.ParseFromString(body)
        for resource_metrics in request_pb.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                metric_names |= {metric.name for metric in scope_metrics.metrics}
    assert n.METRIC_INVOKE_AGENT_DURATION in metric_names


def test_the_environment_names_the_service_over_the_callers_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.version=9.9,deployment.environment=ci")
    settings = telemetry.TelemetrySettings(
        traces_exporters=(), metrics_exporters=(), logs_exporters=()
    )
    providers = telemetry.build_providers(settings, service_version="1.2.3")
    try:
        tracer_provider: Any = providers.tracer_provider
        attributes = tracer_provider.resource.attributes
        assert attributes[SERVICE_NAME] == "from-env"
        assert attributes[SERVICE_VERSION] == "9.9"
        assert attributes["deployment.environment"] == "ci"
        assert not providers.audit_delivery.enabled  # no log exporter: nothing to re-send to
    finally:
        telemetry.shutdown(providers, deadline_s=5)
