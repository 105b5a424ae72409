"""docker-compose.yml, the Dockerfile, Prometheus' and Grafana's provisioning hold together.

No Docker engine runs on these machines, so the compose file is checked statically: against
the Compose Specification's JSON schema, for pinned image tags, for the service storing its
data in the `postgres` service (healthy first, on a volume, by the same credentials), for
the Collector mounting
the same otel-collector.yaml the tests run, for the `scale` profile's agents and gateways
running the tiers' configs with every address they read, for Prometheus scraping every
Collector and loading the alert rules, and for Grafana finding its datasources, the
dashboard, and the link from an exemplar to its trace.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml
from e2e_support import REPO
from scripts import processes

COMPOSE = REPO / "docker-compose.yml"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "agent-runtime.json"
# A tag that names a version: digits, not "latest"/"stable"/a bare major.
PINNED_TAG = re.compile(r"^v?\d+\.\d+\.\d+([.-][\w.]+)?$")
# PostgreSQL numbers its releases major.minor (since 10): "15.20" is one release, "15" is not.
PINNED_TWO_PART_TAG = re.compile(r"^\d+\.\d+(-[a-z]+)?$")
TWO_PART_VERSIONS = {"postgres"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _compose_schema() -> dict[str, Any]:
    # The Compose Specification's schema (compose-spec/compose-spec, schema/compose-spec.json)
    # as check-jsonschema vendors it in its wheel (dev dependency check-jsonschema==0.39.0).
    # Tests have no network, and copying the file into this repository would mean committing
    # a third-party file, so it is read from the installed package.
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    assert isinstance(schema, dict)
    return schema


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = _compose_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_rejects_a_broken_compose_file() -> None:
    """The check above can fail: an unknown key and a wrong type are refused."""
    schema = _compose_schema()
    broken = {"services": {"x": {"image": 1, "not_a_compose_key": True}}}
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


def _tag(image: str) -> str:
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"{image} has no tag"
    return tag


def test_every_image_tag_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue  # built here; its base images are checked in the Dockerfile below
        image = service["image"]
        pinned = PINNED_TWO_PART_TAG if image.split(":")[0] in TWO_PART_VERSIONS else PINNED_TAG
        assert pinned.match(_tag(image)), f"{name}: {image} is not pinned to a version"
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            image = line.split()[1]
            tag = _tag(image)
            assert re.match(r"^\d+\.\d+\.\d+", tag), f"Dockerfile: {image} is not pinned"


def test_collector_and_jaeger_images_match_what_the_tests_build(compose: dict[str, Any]) -> None:
    manifest = yaml.safe_load((REPO / "deploy" / "collector" / "builder-config.yaml").read_text())
    collector = compose["services"]["collector"]
    assert collector["image"] == (
        f"otel/opentelemetry-collector-contrib:{manifest['dist']['version']}"
    )
    # Jaeger's Go module v1.76.0 is the release Jaeger 2.13.0 (its CHANGELOG: v1.76.0 / v2.13.0).
    go_mod = (REPO / "deploy" / "jaeger" / "go.mod").read_text()
    assert re.search(r"github.com/jaegertracing/jaeger v1\.76\.0\b", go_mod)
    assert compose["services"]["jaeger"]["image"] == "jaegertracing/jaeger:2.13.0"


def test_the_service_stores_its_data_in_the_postgres_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = services["postgres"]
    environment = postgres["environment"]
    url = urllib.parse.urlsplit(services["agent-runtime"]["environment"]["DATABASE_URL"])
    assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
    assert url.username == environment["POSTGRES_USER"]
    assert url.path == f"/{environment['POSTGRES_DB']}"
    # One password for both, from the environment (compose interpolates both the same way).
    assert url.password == environment["POSTGRES_PASSWORD"]
    assert environment["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")
    # The service starts once PostgreSQL answers over TCP (not while the image initialises a
    # new volume with its socket-only server).
    assert services["agent-runtime"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    check = postgres["healthcheck"]
    assert check["test"][:2] == ["CMD", "pg_isready"]
    assert "--host=127.0.0.1" in check["test"]
    assert f"--username={url.username}" in check["test"]
    assert {"interval", "timeout", "retries"} <= set(check)
    # The data directory is a named volume, and the port is not published.
    data_dir = environment["PGDATA"]
    volume = _mounts(postgres)[data_dir]
    assert volume in compose["volumes"] and not volume.startswith(".")
    assert "ports" not in postgres


def test_the_postgres_image_is_the_major_the_tests_run_on(compose: dict[str, Any]) -> None:
    """The tests run Debian's PostgreSQL (deploy/ci-prereqs.sh installs it); compose users get
    the same major release, so what the tests pass on is what they run."""
    try:
        bindir = processes.postgres_bindir()
    except FileNotFoundError:
        pytest.skip("no PostgreSQL installed here (deploy/ci-prereqs.sh installs it)")
    tag = _tag(compose["services"]["postgres"]["image"])
    assert tag.split(".")[0] == bindir.parent.name.split(".")[0], (tag, bindir)


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of the service's bind mounts (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        host, container, *_ = volume.split(":")
        mounts[container] = host
    return mounts


def test_the_collector_runs_the_repository_config(compose: dict[str, Any]) -> None:
    collector = compose["services"]["collector"]
    mounts = _mounts(collector)
    config_args = [
        arg.split("=", 1)[1] for arg in collector["command"] if arg.startswith("--config")
    ]
    assert config_args
    for container_path in config_args:
        assert mounts.get(container_path) == "./otel-collector.yaml"
    # The queue and audit file are on a volume, and every variable points inside it.
    environment = collector["environment"]
    data_mount = next(c for c, h in mounts.items() if not h.startswith("."))
    for key in ("OTELCOL_STORAGE_DIR", "OTELCOL_AUDIT_FILE"):
        assert PurePosixPath(environment[key]).is_relative_to(data_mount), key
    agent = compose["services"]["agent-runtime"]["environment"]
    assert agent["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4317"


PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
SCALE_AGENTS = ("otel-agent-1", "otel-agent-2")
SCALE_GATEWAYS = ("otel-gateway-1", "otel-gateway-2")


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_prometheus_scrapes_every_collector(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = _mounts(prometheus)
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    static = {
        name: {target for s in job["static_configs"] for target in s["targets"]}
        for name, job in jobs.items()
    }
    env = compose["services"]["collector"]["environment"]
    exporter_port = _port(env["OTELCOL_PROMETHEUS_ENDPOINT"])
    assert static == {
        "otel-collector": {f"collector:{exporter_port}"},
        "otel-collector-self": {f"collector:{env['OTELCOL_TELEMETRY_PORT']}"},
    }
    # The scale profile's Collectors, by DNS (nothing to scrape without that profile).
    services = compose["services"]

    def dns(job: str) -> dict[str, int]:
        return {
            name: sd["port"] for sd in jobs[job].get("dns_sd_configs", []) for name in sd["names"]
        }

    assert dns("otel-collector") == {
        agent: _port(services[agent]["environment"]["OTELCOL_PROMETHEUS_ENDPOINT"])
        for agent in SCALE_AGENTS
    }
    assert dns("otel-collector-self") == {
        name: int(services[name]["environment"]["OTELCOL_TELEMETRY_PORT"])
        for name in (*SCALE_AGENTS, *SCALE_GATEWAYS)
    }


def test_prometheus_loads_the_alert_rules_and_keeps_exemplars(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = _mounts(prometheus)
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    for rule_file in config["rule_files"]:
        assert mounts[rule_file] == "./deploy/prometheus/alerts.yml", rule_file
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (deploy/ci-prereqs.sh installs prometheus)")
    # promtool checks the config with the rule file where the container mounts it.
    local = PROMETHEUS_CONFIG.read_text()
    for rule_file in config["rule_files"]:
        local = local.replace(rule_file, str(REPO / mounts[rule_file]))
    (tmp_path / "prometheus.yml").write_text(local)
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _config_env_variables(paths: list[Path]) -> set[str]:
    text = "".join(path.read_text() for path in paths)
    return set(re.findall(r"\$\{env:([A-Z0-9_]+)(?::-[^}]*)?\}", text))


def test_the_scale_profile_runs_the_tiers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    scale = {name for name, service in services.items() if "scale" in service.get("profiles", [])}
    replicas = {"agent-runtime-1", "agent-runtime-2"}
    assert scale == {*replicas, *SCALE_AGENTS, *SCALE_GATEWAYS, "scale-volume-init"}
    collector_image = services["collector"]["image"]
    volumes: list[str] = []
    for name in (*SCALE_AGENTS, *SCALE_GATEWAYS):
        service = services[name]
        assert service["image"] == collector_image, name
        mounts = _mounts(service)
        configs = [a.split("=", 1)[1] for a in service["command"] if a.startswith("--config")]
        repo_files = [Path(REPO, mounts[path]) for path in configs]
        expected = (
            ["otel-agent.yaml", "otel-agent.dns.yaml"]
            if name in SCALE_AGENTS
            else ["otel-gateway.yaml"]
        )
        assert [f.name for f in repo_files] == expected, name
        assert all(f.parent == REPO / "deploy" / "collector" for f in repo_files), name
        environment = service["environment"]
        # Every address and path the configs read is set (listening on all interfaces).
        addresses = {
            v
            for v in _config_env_variables(repo_files)
            if v.endswith(("_ENDPOINT", "_PORT", "_HOST", "_DIR", "_FILE", "_NAME"))
        }
        assert addresses <= set(environment), (name, addresses - set(environment))
        data_mount = next(c for c, h in mounts.items() if not h.startswith("."))
        volumes.append(mounts[data_mount])
        for key in ("OTELCOL_STORAGE_DIR", "OTELCOL_AUDIT_FILE"):
            assert PurePosixPath(environment[key]).is_relative_to(data_mount), (name, key)
    assert len(set(volumes)) == len(volumes), "each Collector has a volume of its own"
    # The agents resolve the gateways by the alias that every gateway carries.
    for gateway in SCALE_GATEWAYS:
        aliases = services[gateway]["networks"]["default"]["aliases"]
        for agent in SCALE_AGENTS:
            assert services[agent]["environment"]["OTELCOL_GATEWAY_DNS_NAME"] in aliases
    # Each replica sends to the agent of its own host, and says which instance it is.
    for replica, agent in zip(sorted(replicas), SCALE_AGENTS, strict=True):
        environment = services[replica]["environment"]
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{agent}:4317"
        assert environment["OTEL_RESOURCE_ATTRIBUTES"] == f"service.instance.id={replica}"


def test_grafana_provisions_both_datasources_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = _mounts(grafana)
    provisioning = Path(REPO, mounts["/etc/grafana/provisioning"])
    assert provisioning == GRAFANA / "provisioning"

    datasources = yaml.safe_load((provisioning / "datasources" / "datasources.yaml").read_text())
    by_type = {ds["type"]: ds for ds in datasources["datasources"]}
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    assert by_type["jaeger"]["url"].startswith("http://jaeger:")
    uids = {ds["uid"] for ds in datasources["datasources"]}
    # An exemplar's trace_id (the label the Collector's exporter writes) opens Jaeger.
    links = by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert links == [{"name": "trace_id", "datasourceUid": by_type["jaeger"]["uid"]}]

    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yaml").read_text())
    dashboard_dirs = {p["options"]["path"] for p in providers["providers"]}
    for container_dir in dashboard_dirs:
        host_dir = Path(REPO, mounts[container_dir])
        assert (host_dir / DASHBOARD.name).resolve() == DASHBOARD.resolve()

    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "agent-runtime"
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]
            assert target["expr"].strip(), panel["title"]
            # Latency (a histogram's buckets) comes with its exemplars.
            if "_duration_seconds_bucket" in target["expr"]:
                assert target.get("exemplar") is True, panel["title"]


HAPROXY_CONFIG = REPO / "deploy" / "haproxy" / "haproxy.cfg"


def _directives(config: str) -> set[str]:
    """HAProxy's directives, one per line, comments and indentation dropped."""
    lines = (line.split("#", 1)[0].strip() for line in config.splitlines())
    return {" ".join(line.split()) for line in lines if line}


def test_the_replicas_profile_runs_replicas_behind_haproxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    replica = services["agent-runtime-replica"]
    balancer = services["balancer"]
    assert replica["profiles"] == ["replicas"] == balancer["profiles"]
    assert replica["deploy"]["replicas"] >= 2
    assert "ports" not in replica  # only the balancer is reachable from outside
    env = replica["environment"]
    url = urllib.parse.urlsplit(env["DATABASE_URL"])
    assert (url.scheme, url.hostname) == ("postgresql", "postgres")
    assert replica["depends_on"]["postgres"] == {"condition": "service_healthy"}
    # The workspaces are one named volume that every replica mounts.
    workspace = _mounts(replica)[env["AGENT_RUNTIME_WORKSPACE_DIR"]]
    assert workspace in compose["volumes"]
    # Each replica makes its own service.instance.id: none is set for all of them.
    assert "service.instance.id" not in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    # The balancer runs the repository's HAProxy config, and finds the replicas by the
    # service's DNS name on the port they listen on.
    assert _mounts(balancer)["/usr/local/etc/haproxy/haproxy.cfg"] == "./deploy/haproxy/haproxy.cfg"
    directives = _directives(HAPROXY_CONFIG.read_text())
    template = next(d for d in directives if d.startswith("server-template "))
    assert template.split()[-1] == f"agent-runtime-replica:{env['PORT']}"
    assert int(template.split()[2]) >= replica["deploy"]["replicas"]
    bind = next(d for d in directives if d.startswith("bind "))
    published = {int(port.split(":")[1]) for port in balancer["ports"]}
    assert published == {int(bind.rsplit(":", 1)[1])}


def test_the_compose_balancer_balances_as_the_local_one() -> None:
    """The same policy as `make stack REPLICAS=N` and the tests' balancer: least connections,
    readiness checks, redispatch, stream timeouts above the approval timeout."""
    local = _directives(processes.balancer_config(8001, [8011, 8012], health_port=8404))
    compose_side = _directives(HAPROXY_CONFIG.read_text())
    policy = {
        d
        for d in local
        if d.split()[0] in {"balance", "option", "http-check", "retries"}
        or d.startswith("timeout ")
    }
    assert policy and policy <= compose_side, sorted(policy - compose_side)
    checks = next(d for d in local if d.startswith("default-server "))
    assert next(d for d in compose_side if d.startswith("default-server ")).startswith(checks)


def test_haproxy_accepts_the_compose_balancer_config(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(processes.haproxy_binary()), "-c", "-f", str(HAPROXY_CONFIG)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
