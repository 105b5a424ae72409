"""TelemetrySettings (docs/architecture.md): content capture off by default, every knob from the
env."""

from __future__ import annotations

import pytest

from telemetry import TelemetrySettings
from telemetry.settings import (
    AGENT_RUNTIME_CAPTURE_MAX_LENGTH,
    AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S,
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
)

CAPTURE = OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT


def test_capture_variable_is_the_genai_standard_name() -> None:
    assert CAPTURE == "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def test_defaults_capture_nothing() -> None:
    settings = TelemetrySettings.from_env({})
    assert settings == TelemetrySettings()
    assert settings.capture_content is False
    assert settings.capture_max_length == 1024
    assert settings.shutdown_deadline_s == 3.0


@pytest.mark.parametrize(
    "value", ["true", "TRUE", " True ", "1", "span_only", "event_only", "span_and_event"]
)
def test_capture_turns_on(value: str) -> None:
    assert TelemetrySettings.from_env({CAPTURE: value}).capture_content is True


@pytest.mark.parametrize("value", ["", "false", "0", "no_content", "off", "maybe"])
def test_capture_stays_off(value: str) -> None:
    assert TelemetrySettings.from_env({CAPTURE: value}).capture_content is False


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CAPTURE, "span_only")
    monkeypatch.setenv(AGENT_RUNTIME_CAPTURE_MAX_LENGTH, "64")
    monkeypatch.setenv(AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S, "0.5")
    assert TelemetrySettings.from_env() == TelemetrySettings(
        capture_content=True, capture_max_length=64, shutdown_deadline_s=0.5
    )


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "1.5"])
def test_malformed_or_non_positive_lengths_fall_back(raw: str) -> None:
    assert TelemetrySettings.from_env(
        {AGENT_RUNTIME_CAPTURE_MAX_LENGTH: raw}
    ).capture_max_length == (1024)


def test_malformed_deadline_falls_back() -> None:
    env = {AGENT_RUNTIME_TELEMETRY_SHUTDOWN_DEADLINE_S: "soon"}
    assert TelemetrySettings.from_env(env).shutdown_deadline_s == 3.0


@pytest.mark.parametrize(
    ("env", "protocols"),
    [
        ({}, ("grpc", "grpc", "grpc")),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ("http/protobuf",) * 3),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
            },
            ("http/protobuf", "grpc", "http/protobuf"),
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": " HTTP/PROTOBUF ",
                "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "carrier-pigeon",  # unknown: falls back
            },
            ("http/protobuf", "grpc", "grpc"),
        ),
    ],
)
def test_the_otlp_protocol_is_chosen_per_signal_with_the_general_one_as_fallback(
    env: dict[str, str], protocols: tuple[str, str, str]
) -> None:
    settings = TelemetrySettings.from_env(env)
    assert (settings.traces_protocol, settings.metrics_protocol, settings.logs_protocol) == (
        protocols
    )


def test_exporters_per_signal_and_none() -> None:
    settings = TelemetrySettings.from_env(
        {
            "OTEL_TRACES_EXPORTER": "otlp, console",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "Console",
        }
    )
    assert settings.traces_exporters == ("otlp", "console")
    assert settings.metrics_exporters == ()
    assert settings.logs_exporters == ("console",)
    assert TelemetrySettings.from_env({}).traces_exporters == ("otlp",)


def test_queue_sizes_and_sdk_disabled() -> None:
    settings = TelemetrySettings.from_env(
        {
            "OTEL_BSP_MAX_QUEUE_SIZE": "128",
            "OTEL_BLRP_MAX_QUEUE_SIZE": "x",
            "OTEL_SDK_DISABLED": "TRUE",
        }
    )
    assert (settings.span_queue_size, settings.log_queue_size) == (128, 2048)
    assert settings.sdk_disabled
    assert not TelemetrySettings.from_env({"OTEL_SDK_DISABLED": "1"}).sdk_disabled  # spec: "true"
