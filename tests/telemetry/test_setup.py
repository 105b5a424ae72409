"""Setup (DESIGN §10): configure once, shut down within a deadline, count what is dropped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags

import telemetry
from telemetry import names as n
from telemetry._exporters import (
    CountingBatchSpanProcessor,
    CountingLogExporter,
    CountingSpanExporter,
)
from telemetry.audit import AuditLog
from telemetry.metrics import dropped_counter
from telemetry.setup import exemplar_filter
from tests.support.otel import Telemetered

SUBPROCESS_BOUND_S = 10.0
DEADLINE_S = 2.0


# --- configure ---------------------------------------------------------------------------


def test_configure_twice_warns_and_returns_the_first(
    telemetered: Telemetered, caplog: pytest.LogCaptureFixture
) -> None:
    first = telemetry.configured()
    assert first is not None
    again = telemetry.configure()
    assert again is first
    assert "already configured" in caplog.text


def test_shutdown_leaves_providers_it_did_not_build(telemetered: Telemetered) -> None:
    providers = telemetry.configured()
    assert providers is not None and not providers.owned
    assert telemetry.shutdown(deadline_s=0.1) is True


# --- shutdown deadline (a fresh process: global providers are set once per process) ------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there any more: connections are refused


def _child_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(overrides)
    return env


SHUTDOWN_SCRIPT = textwrap.dedent(
    f"""
    import json, time
    from opentelemetry import _logs, trace
    import telemetry
    from telemetry._exporters import CountingBatchSpanProcessor

    providers = telemetry.configure()
    processors = providers.tracer_provider._active_span_processor._span_processors
    tracer = trace.get_tracer("child")
    for number in range(50):
        with tracer.start_as_current_span(f"span-{{number}}"):
            _logs.get_logger("child").emit(body=f"log {{number}}")
    started = time.monotonic()
    flushed = telemetry.shutdown(deadline_s={DEADLINE_S})
    print(json.dumps({{
        "owned": providers.owned,
        "counting": [isinstance(p, CountingBatchSpanProcessor) for p in processors],
        "flushed": flushed,
        "shutdown_s": time.monotonic() - started,
    }}))
    """
)


def test_shutdown_is_bounded_by_its_deadline_when_the_collector_is_down() -> None:
    """The SDK's own shutdown waits up to 30 s for an unreachable endpoint; ours gives up at
    the deadline and the process exits."""
    env = _child_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_METRIC_EXPORT_INTERVAL="60000",
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SHUTDOWN_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["owned"] is True
    assert report["counting"] == [True]
    assert report["flushed"] is False  # the deadline, not the exporter, ended the flush
    assert report["shutdown_s"] < DEADLINE_S + 1.0
    assert elapsed < SUBPROCESS_BOUND_S, f"process took {elapsed:.1f} s"


def test_sdk_disabled_configures_no_exporters() -> None:
    script = textwrap.dedent(
        """
        import json
        import telemetry
        providers = telemetry.configure()
        print(json.dumps({"owned": providers.owned, "flushed": telemetry.shutdown(0.5)}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=_child_env(OTEL_SDK_DISABLED="true"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"owned": False, "flushed": True}


# --- the dropped counter -------------------------------------------------------------------


class Dropped:
    """A local (not global) meter provider with the dropped counter and a reader."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)
        self.counter = dropped_counter(self.provider.get_meter("tests"))

    def count(self, signal: str) -> float:
        data = self.reader.get_metrics_data()
        total = 0.0
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != n.METRIC_TELEMETRY_DROPPED:
                        continue
                    for point in metric.data.data_points:
                        if (point.attributes or {}).get(n.TELEMETRY_SIGNAL) == signal:
                            total += point.value  # type: ignore[union-attr]
        return total


@pytest.fixture
def dropped() -> Iterator[Dropped]:
    counter = Dropped()
    yield counter
    counter.provider.shutdown()


def _spans(count: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    for number in range(count):
        tracer.start_span(f"s{number}").end()
    provider.shutdown()
    return list(memory.get_finished_spans())


class FixedSpanExporter(SpanExporter):
    def __init__(self, result: SpanExportResult | None) -> None:
        self.result = result

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.result is None:
            raise ConnectionError("collector down")
        return self.result


@pytest.mark.parametrize("result", [SpanExportResult.FAILURE, None], ids=["failure", "exception"])
def test_failed_span_exports_are_counted(dropped: Dropped, result: SpanExportResult | None) -> None:
    exporter = CountingSpanExporter(FixedSpanExporter(result), dropped.counter)
    assert exporter.export(_spans(3)) is SpanExportResult.FAILURE
    assert dropped.count("traces") == 3
    assert dropped.count("logs") == 0


def test_successful_span_exports_are_not_counted(dropped: Dropped) -> None:
    exporter = CountingSpanExporter(FixedSpanExporter(SpanExportResult.SUCCESS), dropped.counter)
    assert exporter.export(_spans(2)) is SpanExportResult.SUCCESS
    assert dropped.count("traces") == 0


class BlockingExporter(SpanExporter):
    """Blocks in export until released, so the processor's queue fills deterministically."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(10)
        self.exported.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


def test_a_full_queue_refuses_new_spans_counts_them_and_says_so_once(
    dropped: Dropped, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = BlockingExporter()
    processor = CountingBatchSpanProcessor(
        exporter,
        dropped.counter,
        max_queue_size=2,
        max_export_batch_size=1,
        schedule_delay_millis=60_000,
        meter_provider=dropped.provider,
    )
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("tests")
    try:
        tracer.start_span("first").end()
        assert exporter.entered.wait(10), "the worker never started exporting"
        for number in range(5):  # 2 fit the queue, 3 are refused at the door
            tracer.start_span(f"queued-{number}").end()
        assert dropped.count("traces") == 3
        assert [r.message.startswith("Queue full") for r in caplog.records].count(True) == 1
    finally:
        exporter.release.set()
        provider.shutdown()
    assert exporter.exported == ["first", "queued-0", "queued-1"]
    assert dropped.count("traces") == 3


class FixedLogExporter(LogRecordExporter):
    def __init__(self, result: LogRecordExportResult) -> None:
        self.result = result

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return self.result

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_log_export_acknowledges_audit_records_or_counts_the_drop(
    telemetered: Telemetered, dropped: Dropped, tmp_path: Path
) -> None:
    audit = AuditLog(tmp_path / "audit.db")
    try:
        event = telemetry.SessionDeleted(session_id="s1")
        context = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1))
        attributes = event.attributes(telemetry.TelemetrySettings())
        record = audit.write(event, attributes, context, durable=True)
        audit.flush()
        batch = telemetered.logs()
        assert len(batch) == 1

        failing = CountingLogExporter(
            FixedLogExporter(LogRecordExportResult.FAILURE), dropped.counter
        )
        assert failing.export(batch) is LogRecordExportResult.FAILURE
        assert dropped.count("logs") == 1
        assert [r.record_id for r in audit.unexported()] == [record.record_id]

        working = CountingLogExporter(
            FixedLogExporter(LogRecordExportResult.SUCCESS), dropped.counter
        )
        assert working.export(batch) is LogRecordExportResult.SUCCESS
        assert audit.unexported() == []
        assert dropped.count("logs") == 1
    finally:
        audit.close()


def test_exemplars_are_off_unless_the_variable_asks_for_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_METRICS_EXEMPLAR_FILTER", raising=False)
    assert isinstance(exemplar_filter(), AlwaysOffExemplarFilter)
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "trace_based")
    assert exemplar_filter() is None  # the SDK reads the variable itself
