"""Setup (docs/architecture.md): configure once, shut down within a deadline, count what is dropped,
on the SDK's public API (wrapped batch processors and exporters)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanContext, TraceFlags
from scripts.processes import free_port  # nothing listens there: connections are refused

import telemetry
from agent_runtime.store import SQLiteStore
from telemetry import names as n
from telemetry._exporters import CountingLogRecordProcessor, CountingSpanProcessor
from telemetry.audit import AuditDelivery, AuditLog
from telemetry.metrics import dropped_counter
from tests.support.otel import Telemetered

SUBPROCESS_BOUND_S = 10.0
DEADLINE_S = 2.0


# --- configure ---------------------------------------------------------------------------


def test_configure_twice_warns_and_keeps_the_first(
    telemetered: Telemetered, caplog: pytest.LogCaptureFixture
) -> None:
    assert telemetry.configured()
    again = telemetry.configure()
    assert "already configured" in caplog.text
    assert again.tracer_provider is telemetered.providers.tracer_provider
    assert trace.get_tracer_provider() is telemetered.providers.tracer_provider
    assert not again.owned  # the second caller has nothing to shut down


def test_shutdown_leaves_providers_it_did_not_build(telemetered: Telemetered) -> None:
    providers = telemetered.providers
    assert not providers.owned
    assert telemetry.shutdown(providers, deadline_s=0.1) is True
    trace.get_tracer("tests").start_span("still recording").end()
    assert [span.name for span in telemetered.spans()] == ["still recording"]


# --- shutdown deadline (a fresh process: global providers are set once per process) ------


def _child_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(overrides)
    return env


SHUTDOWN_SCRIPT = textwrap.dedent(
    f"""
    import json, time
    from opentelemetry import _logs, trace
    import telemetry

    providers = telemetry.configure(service_version="9.9.9")
    tracer = trace.get_tracer("child")
    for number in range(50):
        with tracer.start_as_current_span(f"span-{{number}}"):
            _logs.get_logger("child").emit(body=f"log {{number}}")
    started = time.monotonic()
    flushed = telemetry.shutdown(providers, deadline_s={DEADLINE_S})
    print(json.dumps({{
        "owned": providers.owned,
        "configured": telemetry.configured(),
        "flushed": flushed,
        "shutdown_s": time.monotonic() - started,
    }}))
    """
)


def test_shutdown_is_bounded_by_its_deadline_when_the_collector_is_down() -> None:
    """The SDK's own shutdown waits up to 30 s for an unreachable endpoint; ours gives up at
    the deadline and the process exits."""
    env = _child_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
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
    assert report["configured"] is True
    assert report["flushed"] is False  # the deadline, not the exporter, ended the flush
    assert report["shutdown_s"] < DEADLINE_S + 1.0
    assert elapsed < SUBPROCESS_BOUND_S, f"process took {elapsed:.1f} s"


def test_sdk_disabled_configures_no_exporters() -> None:
    script = textwrap.dedent(
        """
        import json
        import telemetry
        providers = telemetry.configure()
        print(json.dumps({
            "owned": providers.owned,
            "configured": telemetry.configured(),
            "ships_audit": providers.audit_delivery.enabled,
            "flushed": telemetry.shutdown(providers, 0.5),
        }))
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
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "owned": False,
        "configured": False,
        "ships_audit": False,
        "flushed": True,
    }


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


class FixedSpanExporter(SpanExporter):
    """Answers every export with ``result``, or raises when it is None."""

    def __init__(self, result: SpanExportResult | None) -> None:
        self.result = result
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.result is None:
            raise ConnectionError("collector down")
        self.exported.extend(span.name for span in spans)
        return self.result


def _pipeline(processor: CountingSpanProcessor) -> TracerProvider:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider


@pytest.mark.parametrize("result", [SpanExportResult.FAILURE, None], ids=["failure", "exception"])
def test_failed_span_exports_are_counted(dropped: Dropped, result: SpanExportResult | None) -> None:
    processor = CountingSpanProcessor(
        FixedSpanExporter(result),
        dropped.counter,
        max_queue_size=16,
        max_export_batch_size=16,
        schedule_delay_millis=60_000,
    )
    provider = _pipeline(processor)
    tracer = provider.get_tracer("tests")
    for number in range(3):
        tracer.start_span(f"s{number}").end()
    assert provider.force_flush()
    assert dropped.count("traces") == 3
    assert dropped.count("logs") == 0
    provider.shutdown()


def test_successful_span_exports_are_not_counted(dropped: Dropped) -> None:
    exporter = FixedSpanExporter(SpanExportResult.SUCCESS)
    provider = _pipeline(
        CountingSpanProcessor(
            exporter,
            dropped.counter,
            max_queue_size=16,
            max_export_batch_size=16,
            schedule_delay_millis=60_000,
        )
    )
    tracer = provider.get_tracer("tests")
    tracer.start_span("kept").end()
    with trace.use_span(tracer.start_span("parent"), end_on_exit=True):
        pass
    provider.shutdown()
    assert sorted(exporter.exported) == ["kept", "parent"]
    assert dropped.count("traces") == 0


def test_unsampled_spans_are_neither_exported_nor_counted(dropped: Dropped) -> None:
    exporter = FixedSpanExporter(SpanExportResult.SUCCESS)
    processor = CountingSpanProcessor(
        exporter,
        dropped.counter,
        max_queue_size=1,
        max_export_batch_size=1,
        schedule_delay_millis=60_000,
    )
    provider = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    provider.add_span_processor(processor)
    for number in range(5):  # more than the queue holds: none of them takes a place
        provider.get_tracer("tests").start_span(f"s{number}").end()
    provider.shutdown()
    assert exporter.exported == []
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
    """The SDK's queue never overflows (it would evict the oldest span and warn itself):
    new spans are refused at the door while it is full, each one counted."""
    exporter = BlockingExporter()
    processor = CountingSpanProcessor(
        exporter,
        dropped.counter,
        max_queue_size=2,
        max_export_batch_size=1,
        schedule_delay_millis=60_000,
        meter_provider=dropped.provider,
    )
    provider = _pipeline(processor)
    tracer = provider.get_tracer("tests")
    try:
        tracer.start_span("first").end()
        assert exporter.entered.wait(10), "the worker never started exporting"
        for number in range(5):  # 2 fit the queue, 3 are refused at the door
            tracer.start_span(f"queued-{number}").end()
        assert dropped.count("traces") == 3
        warnings = [r.getMessage() for r in caplog.records if "Queue full" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].startswith("Queue full: new spans")
    finally:
        exporter.release.set()
        provider.shutdown()
    assert exporter.exported == ["first", "queued-0", "queued-1"]  # none evicted
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


async def test_log_export_acknowledges_audit_records_or_counts_the_drop(
    dropped: Dropped, tmp_path: Path
) -> None:
    """The log exporter reports to the audit delivery it was built with, and the outbox
    that listens to that delivery marks what reached the Collector."""
    exporter = FixedLogExporter(LogRecordExportResult.FAILURE)
    delivery = AuditDelivery()
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(
        CountingLogRecordProcessor(
            exporter,
            dropped.counter,
            delivery,
            max_queue_size=16,
            max_export_batch_size=16,
            schedule_delay_millis=60_000,
        )
    )
    store = SQLiteStore(tmp_path / "store.db")
    await store.open()
    audit = AuditLog(
        store,
        logger=logger_provider.get_logger(n.AUDIT_SCOPE),
        delivery=delivery,
    )
    try:
        event = telemetry.SessionDeleted(session_id="s1")
        context = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1))
        audit.write(event, event.attributes(telemetry.TelemetrySettings()), context)
        await audit.flush()
        assert logger_provider.force_flush()
        assert dropped.count("logs") == 1
        assert not delivery.healthy
        await audit.flush()
        assert await store.count_unshipped() == 1

        exporter.result = LogRecordExportResult.SUCCESS
        assert await audit.resend(older_than_s=-1, limit=10) == 1
        assert logger_provider.force_flush()
        assert delivery.healthy
        await audit.flush()  # the acknowledgement reaches the store
        assert await store.count_unshipped() == 0
        assert dropped.count("logs") == 1
    finally:
        await audit.aclose()
        await store.close()
        logger_provider.shutdown()
