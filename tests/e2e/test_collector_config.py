"""The Collector configurations, the overlays and the builder manifest agree.

The real Collector binary (built from deploy/collector/builder-config.yaml) validates every
configuration: one machine (otel-collector.yaml, with and without its tail-sampling
overlay) and the two tiers (otel-agent.yaml, with the static or the DNS resolver, and
otel-gateway.yaml). The pipelines keep memory_limiter first and batch after it; the manifest
lists exactly the components the configurations use, all from release v0.161.0; the parts
the tiers share with the one-machine Collector are the same definitions; and the shape the
tiers promise (trace-id routing, a persistent queue, audit records beside the service,
decisions that wait for the human) is what the files say.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import REPO
from scripts import processes

from agent_runtime.settings import Settings

pytestmark = pytest.mark.e2e

BASE = processes.COLLECTOR_CONFIG
OVERLAY = processes.TAIL_SAMPLING_OVERLAY
AGENT = processes.AGENT_CONFIG
AGENT_DNS = processes.AGENT_DNS_OVERLAY
GATEWAY = processes.GATEWAY_CONFIG
MANIFEST = REPO / "deploy" / "collector" / "builder-config.yaml"
RELEASE = "v0.161.0"
# The core "v1" modules (confmap providers) released together with v0.161.0.
STABLE_RELEASE = "v1.67.0"
KINDS = ("extensions", "receivers", "processors", "exporters", "connectors")
ENV_DEFAULT = re.compile(r"^\$\{env:([A-Z0-9_]+):-(.*)\}$")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _merge(base: Any, overlay: Any) -> Any:
    """The Collector's merge of several --config files: maps merge, everything else replaces
    (a null removes the key, as the DNS overlay does with the static resolver)."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = copy.deepcopy(base)
        for key, value in overlay.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(overlay)


CONFIGS = {
    "default": [BASE],
    "tail-sampling": [BASE, OVERLAY],
    "agent": [AGENT],
    "agent-dns": [AGENT, AGENT_DNS],
    "gateway": [GATEWAY],
}


def _config(name: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in CONFIGS[name]:
        merged = _merge(merged, _load(path))
    return merged


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _default(value: str) -> str:
    """The default of a `${env:VAR:-default}` value."""
    match = ENV_DEFAULT.match(str(value))
    assert match, value
    return match.group(2)


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", duration)
    assert match, duration
    return float(match.group(1)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[match.group(2)]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_collector_validates_the_config(collector_binary: Path, name: str) -> None:
    args = [f"--config={path}" for path in CONFIGS[name]]
    result = subprocess.run(
        [str(collector_binary), "validate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_memory_limiter_first_then_batch_in_every_pipeline(name: str) -> None:
    config = _config(name)
    pipelines = config["service"]["pipelines"]
    assert pipelines
    for pipeline_id, pipeline in pipelines.items():
        processors = [_type(p) for p in pipeline.get("processors", [])]
        assert processors[:1] == ["memory_limiter"], f"{pipeline_id}: {processors}"
        exporters = {_type(e) for e in pipeline["exporters"]}
        if exporters == {"file"}:
            # The audit pipeline writes synchronously, so an acknowledged OTLP export means
            # the record is on disk; a batch processor would hold acknowledged records in
            # memory, where a Collector crash loses them behind the service's back.
            assert "batch" not in processors, pipeline_id
        else:
            assert processors[-1] == "batch", f"{pipeline_id}: batch must come last: {processors}"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_referenced_component_is_defined_and_every_defined_one_used(name: str) -> None:
    config = _config(name)
    service = config["service"]
    used = set(service.get("extensions", []))
    for pipeline in service["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            used.update(pipeline.get(kind, []))
    defined = {cid for kind in KINDS for cid in config.get(kind, {})}
    assert used <= defined, f"{name}: used but not defined: {used - defined}"
    assert defined <= used, f"{name}: defined but unused: {defined - used}"


def test_the_tiers_share_the_one_machine_definitions() -> None:
    """Span metrics, span-event counts, the audit filter and sink and the Prometheus exporter
    are the same on the agent as on the one Collector, so Prometheus gets the same series."""
    base, agent = _config("default"), _config("agent")
    for kind, component_id in (
        ("connectors", "span_metrics"),
        ("connectors", "count/span_events"),
        ("processors", "memory_limiter"),
        ("processors", "batch"),
        ("processors", "filter/audit_only"),
        ("exporters", "prometheus"),
    ):
        assert agent[kind][component_id] == base[kind][component_id], component_id
    audit = {k: v for k, v in agent["exporters"]["file/audit"].items() if k != "path"}
    assert audit == {k: v for k, v in base["exporters"]["file/audit"].items() if k != "path"}
    assert agent["service"]["pipelines"]["metrics"] == base["service"]["pipelines"]["metrics"]
    assert agent["service"]["pipelines"]["logs/audit"] == base["service"]["pipelines"]["logs/audit"]
    # One sampling policy set: the gateway tier and the one-machine overlay.
    gateway, overlay = _config("gateway"), _config("tail-sampling")
    assert gateway["processors"]["tail_sampling"] == overlay["processors"]["tail_sampling"]


@pytest.mark.parametrize("name", ["agent", "agent-dns"])
def test_the_agent_routes_every_span_by_trace_id_from_a_persistent_queue(name: str) -> None:
    config = _config(name)
    pipelines = config["service"]["pipelines"]
    traces = pipelines["traces"]
    # Span metrics and counts from every span, on the agent, before any sampling.
    assert set(traces["exporters"]) == {"load_balancing", "span_metrics", "count/span_events"}
    assert "tail_sampling" not in {_type(p) for p in traces["processors"]}
    exporter = config["exporters"]["load_balancing"]
    assert exporter["routing_key"] == "traceID"
    queue = exporter["sending_queue"]
    assert queue["enabled"] is True
    # One consumer keeps the batches in the order their spans ended: a trace's root span,
    # after which the gateway decides, never overtakes the rest of the trace.
    assert queue["num_consumers"] == 1
    assert queue["storage"] in config["extensions"]
    assert _type(queue["storage"]) == "file_storage"
    # No second, in-memory queue per gateway: a batch leaves the persistent queue only when
    # a gateway acknowledged it.
    assert exporter["protocol"]["otlp"]["sending_queue"]["enabled"] is False
    resolvers = set(exporter["resolver"])
    assert resolvers == ({"dns"} if name == "agent-dns" else {"static"})
    # Audit records stay on this host: the only logs pipeline ends in the file exporter.
    logs = {pid: p for pid, p in pipelines.items() if pid.split("/")[0] == "logs"}
    assert list(logs) == ["logs/audit"]
    assert logs["logs/audit"]["exporters"] == ["file/audit"]


@pytest.mark.parametrize("name", ["default", "agent"])
def test_the_audit_sink_writes_before_it_acknowledges(name: str) -> None:
    """With rotation the file exporter writes each export through to the file; without it,
    it buffers them for flush_interval, and a crash would lose acknowledged records."""
    audit = _config(name)["exporters"]["file/audit"]
    assert audit["rotation"]["max_megabytes"], audit
    assert "flush_interval" not in audit and "compression" not in audit, audit


def test_the_gateway_decides_whole_traces_after_the_human() -> None:
    config = _config("gateway")
    assert set(config["service"]["pipelines"]) == {"traces"}  # no metrics, no audit records
    sampling = config["processors"]["tail_sampling"]
    # Decided after the root span (which ends last); the backstop outlasts the approval timeout.
    assert _seconds(_default(sampling["decision_wait_after_root_received"])) >= 1
    approval_timeout = Settings().approval_timeout_s
    assert _seconds(_default(sampling["decision_wait"])) > approval_timeout
    assert int(_default(sampling["decision_cache"]["sampled_cache_size"])) >= int(
        _default(sampling["num_traces"])
    )
    names = [policy["name"] for policy in sampling["policies"]]
    assert names[0] == "errors" and names[-1] == "the-rest", names
    rest = sampling["policies"][-1]["probabilistic"]["sampling_percentage"]
    assert float(_default(rest)) == 10


def _manifest_modules() -> dict[str, set[str]]:
    manifest = _load(MANIFEST)
    modules: dict[str, set[str]] = {}
    for kind in (*KINDS, "providers"):
        modules[kind] = {entry["gomod"] for entry in manifest.get(kind, [])}
    return modules


def test_manifest_pins_every_module_to_one_release() -> None:
    manifest = _load(MANIFEST)
    assert manifest["dist"]["version"] == RELEASE.removeprefix("v")
    for kind, modules in _manifest_modules().items():
        for gomod in modules:
            path, version = gomod.split()
            expected = STABLE_RELEASE if kind == "providers" else RELEASE
            assert version == expected, gomod
            assert path.startswith(
                (
                    "go.opentelemetry.io/collector/",
                    "github.com/open-telemetry/opentelemetry-collector-contrib/",
                )
            ), gomod
    # A replace may pin a third-party dependency, never one of the Collector's own modules.
    for replace in manifest.get("replaces", []):
        assert "opentelemetry" not in replace, replace
    script = (REPO / "scripts" / "build-collector.sh").read_text()
    assert re.search(rf'^BUILDER_VERSION="{RELEASE}"$', script, re.MULTILINE)


def test_manifest_lists_exactly_the_components_the_configs_use(collector_binary: Path) -> None:
    # The binary says which module provides each component type it contains.
    listing = yaml.safe_load(
        subprocess.run(
            [str(collector_binary), "components"], capture_output=True, text=True, check=True
        ).stdout
    )
    module_of = {
        (kind, entry["name"]): entry["module"]
        for kind in KINDS
        for entry in listing.get(kind) or []
    }
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for name in CONFIGS:
        config = _config(name)
        for kind in KINDS:
            for component_id in config.get(kind, {}):
                key = (kind, _type(component_id))
                assert key in module_of, f"{key} is used but not in the built Collector"
                used[kind].add(module_of[key])
    manifest = _manifest_modules()
    for kind in KINDS:
        assert manifest[kind] == used[kind], (
            f"{kind}: manifest {manifest[kind]} != used {used[kind]}"
        )


@pytest.mark.parametrize("name", ["default", "agent", "gateway"])
def test_stack_env_covers_every_env_variable_of_the_config(name: str) -> None:
    """Tests and `make stack` set every address/path the config reads (no clashing defaults)."""
    text = "".join(path.read_text() for path in CONFIGS[name])
    variables = set(re.findall(r"\$\{env:([A-Z0-9_]+)(?::-[^}]*)?\}", text))
    pool = processes.PortPool()
    ports = processes.CollectorPorts.free(pool)
    jaeger = processes.JaegerPorts.free(pool)
    state = Path("/tmp/unused")
    env = {
        "default": processes.collector_env(ports, state, jaeger=jaeger),
        "agent": processes.agent_env(ports, state, [processes.CollectorPorts.free(pool)]),
        "gateway": processes.collector_env(ports, state, jaeger=jaeger),
    }[name]
    suffixes = ("_ENDPOINT", "_ENDPOINTS", "_PORT", "_HOST", "_DIR", "_FILE")
    addresses = {v for v in variables if v.endswith(suffixes)}
    assert addresses <= set(env), addresses - set(env)
