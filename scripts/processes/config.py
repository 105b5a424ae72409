"""Where the repository and the configuration files its programs read are; the service's name."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
COLLECTOR_CONFIG = REPO / "otel-collector.yaml"
TAIL_SAMPLING_OVERLAY = REPO / "deploy" / "collector" / "otel-collector.tail-sampling.yaml"
AGENT_CONFIG = REPO / "deploy" / "collector" / "otel-agent.yaml"
AGENT_DNS_OVERLAY = REPO / "deploy" / "collector" / "otel-agent.dns.yaml"
GATEWAY_CONFIG = REPO / "deploy" / "collector" / "otel-gateway.yaml"
JAEGER_CONFIG = REPO / "deploy" / "jaeger" / "config.yaml"
ALERT_RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
SERVICE_NAME = "agent-runtime"
