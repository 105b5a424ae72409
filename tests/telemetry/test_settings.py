"""TelemetrySettings (DESIGN §10): content capture off by default, every knob from the env."""

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
