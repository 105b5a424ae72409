"""Replicas are told apart (docs/replicas.md): each process's resource carries its own
``service.instance.id``, the one ``OTEL_RESOURCE_ATTRIBUTES`` names, otherwise one generated
at start-up, and logged either way."""

from __future__ import annotations

import logging
import re

import pytest
from opentelemetry.sdk.trace import TracerProvider

import telemetry

NO_EXPORTERS = telemetry.TelemetrySettings(
    traces_exporters=(), metrics_exporters=(), logs_exporters=()
)
INSTANCE_ID = "service.instance.id"


def _instance_id(providers: telemetry.Providers) -> object:
    assert isinstance(providers.tracer_provider, TracerProvider)
    return providers.tracer_provider.resource.attributes.get(INSTANCE_ID)


def test_otel_resource_attributes_name_the_instance(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"{INSTANCE_ID}=replica-7,team=agents")
    with caplog.at_level(logging.INFO, logger="telemetry.setup"):
        providers = telemetry.build_providers(NO_EXPORTERS)
    try:
        assert _instance_id(providers) == "replica-7"
        assert f"telemetry resource: {INSTANCE_ID}=replica-7" in caplog.text
    finally:
        telemetry.shutdown(providers)


def test_otherwise_each_process_generates_its_own_and_logs_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=agents")
    with caplog.at_level(logging.INFO, logger="telemetry.setup"):
        first = telemetry.build_providers(NO_EXPORTERS)
        second = telemetry.build_providers(NO_EXPORTERS)
    try:
        ids = [_instance_id(first), _instance_id(second)]
        assert all(isinstance(i, str) and re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
        assert ids[0] != ids[1]
        logged = re.findall(rf"telemetry resource: {re.escape(INSTANCE_ID)}=(\w+)", caplog.text)
        assert logged == ids
        # The rest of OTEL_RESOURCE_ATTRIBUTES is kept.
        assert isinstance(first.tracer_provider, TracerProvider)
        assert first.tracer_provider.resource.attributes.get("team") == "agents"
    finally:
        telemetry.shutdown(first)
        telemetry.shutdown(second)
