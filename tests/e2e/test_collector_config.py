"""otel-collector.yaml, its tail-sampling overlay and the builder manifest agree.

The real Collector binary (built from deploy/collector/builder-config.yaml) validates both
configurations; the pipelines keep memory_limiter first and batch after it; the manifest
lists exactly the components the configurations use, all from release v0.161.0.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import REPO, stackctl

pytestmark = pytest.mark.e2e

BASE = REPO / "otel-collector.yaml"
OVERLAY = REPO / "deploy" / "collector" / "otel-collector.tail-sampling.yaml"
MANIFEST = REPO / "deploy" / "collector" / "builder-config.yaml"
RELEASE = "v0.161.0"
# The core "v1" modules (confmap providers) released together with v0.161.0.
STABLE_RELEASE = "v1.67.0"
KINDS = ("extensions", "receivers", "processors", "exporters", "connectors")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _merge(base: Any, overlay: Any) -> Any:
    """The Collector's merge of several --config files: maps merge, everything else replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = copy.deepcopy(base)
        for key, value in overlay.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(overlay)


CONFIGS = {
    "default": [BASE],
    "tail-sampling": [BASE, OVERLAY],
}


def _config(name: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in CONFIGS[name]:
        merged = _merge(merged, _load(path))
    return merged


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


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


def test_every_referenced_component_is_defined_and_every_defined_one_used() -> None:
    for name in CONFIGS:
        config = _config(name)
        service = config["service"]
        used = set(service.get("extensions", []))
        for pipeline in service["pipelines"].values():
            for kind in ("receivers", "processors", "exporters"):
                used.update(pipeline.get(kind, []))
        defined = {cid for kind in KINDS for cid in config.get(kind, {})}
        assert used <= defined, f"{name}: used but not defined: {used - defined}"
        if name == "tail-sampling":
            assert used == defined, f"{name}: defined but unused: {defined - used}"
        else:
            # The base file leaves only the overlay's processor out.
            assert defined - used == set(), f"{name}: defined but unused: {defined - used}"


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


def test_stack_env_covers_every_env_variable_of_the_config() -> None:
    """Tests and `make stack` set every address/path the config reads (no clashing defaults)."""
    text = BASE.read_text()
    variables = set(re.findall(r"\$\{env:([A-Z0-9_]+)(?::-[^}]*)?\}", text))
    ports = stackctl.Ports.free()
    env = stackctl.collector_env(ports, Path("/tmp/unused"))
    addresses = {
        v for v in variables if v.endswith(("_ENDPOINT", "_PORT", "_HOST", "_DIR", "_FILE"))
    }
    assert addresses <= set(env), addresses - set(env)
