"""The alert rules are valid, unit-tested by promtool, documented, and on the dashboard.

`promtool` ships with Debian's prometheus package, which deploy/ci-prereqs.sh installs, so in
CI these run; on a machine without it they are skipped, saying so. The rest checks that the
unit test file covers every rule (a firing and a quiet case per alert, a value per recording
rule), that every alert names its runbook entry and the entry exists, and that the dashboard
plots every recorded series.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import DASHBOARD, REPO

RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "alerts.test.yml"
RUNBOOK = REPO / "docs" / "runbook.md"


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(RULES)["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool is not on PATH (Debian's prometheus package has it; "
            "deploy/ci-prereqs.sh installs it): the alert rules' unit tests cannot run"
        )
    return found


def test_promtool_finds_the_rules_valid(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULE_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_fail_when_a_rule_is_broken(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: the same tests against rules with one threshold moved."""
    rule = "agent_runtime:agent_error_ratio:rate5m"
    broken = RULES.read_text().replace(f"{rule} > 0.05", f"{rule} > 0.5")
    assert broken != RULES.read_text()
    (tmp_path / RULES.name).write_text(broken)
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    result = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "AgentErrorRateHigh" in result.stdout + result.stderr


def test_every_rule_has_a_unit_test() -> None:
    tests = _yaml(RULE_TESTS)["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for alert_test in case.get("alert_rule_test", []):
            (firing if alert_test["exp_alerts"] else quiet).add(alert_test["alertname"])
    evaluated = " ".join(
        expr_test["expr"] for case in tests for expr_test in case.get("promql_expr_test", [])
    )
    for rule in _rules():
        if "alert" in rule:
            assert rule["alert"] in firing, f"{rule['alert']}: no case where it fires"
            assert rule["alert"] in quiet, f"{rule['alert']}: no case where it stays quiet"
        else:
            assert re.search(rf"(?<![\w:]){re.escape(rule['record'])}(?![\w:])", evaluated), (
                f"{rule['record']}: no promql_expr_test evaluates it"
            )


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_alert_has_a_runbook_entry() -> None:
    anchors = _anchors(RUNBOOK.read_text())
    for alert in _alerts():
        runbook = alert["annotations"]["runbook"]
        path, _, anchor = runbook.partition("#")
        assert (REPO / path).resolve() == RUNBOOK.resolve(), runbook
        assert anchor == alert["alert"].lower(), runbook
        assert anchor in anchors, f"docs/runbook.md has no section {alert['alert']}"
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]


def test_the_dashboard_shows_every_recorded_signal() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    )
    for rule in _rules():
        if "record" in rule:
            assert rule["record"] in exprs, f"no panel plots {rule['record']}"
    # The signals the alerts read directly, not through a recorded series.
    for metric in (
        "agent_runtime_approvals_oldest_pending_age_seconds",
        "agent_runtime_approvals_pending",
        "agent_runtime_audit_outbox_backlog",
        'up{job=~"otel-collector|otel-collector-self"}',
        "ALERTS",
    ):
        assert metric in exprs, f"no panel shows {metric}"
