"""The dashboard and the alert rules aggregate over replicas as their metrics require
(docs/replicas.md, "Metrics across replicas").

The store-read gauges (sessions, sessions running, approvals pending, the oldest pending
approval's age) are the same fact reported by every replica: summing them over replicas
would multiply it by their number, so every expression over one takes its ``max``
(optionally ``by`` some labels), and none sums it. Counters are per replica and sum.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import yaml
from e2e_support import DASHBOARD, REPO

from telemetry import names as n

RULES = REPO / "deploy" / "prometheus" / "alerts.yml"

STORE_GAUGES = (
    n.METRIC_SESSIONS_ACTIVE.replace(".", "_"),
    n.METRIC_SESSIONS_RUNNING.replace(".", "_"),
    n.METRIC_APPROVALS_PENDING.replace(".", "_"),
    n.METRIC_APPROVALS_OLDEST_PENDING_AGE.replace(".", "_") + "_seconds",
    n.METRIC_AUDIT_OUTBOX_BACKLOG.replace(".", "_"),
)
_MAX_OF = r"\bmax\s*(?:(?:by|without)\s*\([^()]*\)\s*)?\(\s*{gauge}\b"


def _dashboard_expressions() -> Iterator[tuple[str, str]]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def _rule_expressions() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], rule["expr"]


def aggregation_problems(where: str, expr: str) -> list[str]:
    """What is wrong with ``expr``'s use of the store-read gauges (empty: nothing)."""
    problems = []
    for gauge in STORE_GAUGES:
        uses = len(re.findall(rf"\b{gauge}\b", expr))
        if not uses:
            continue
        if re.search(r"\bsum\b", expr):
            problems.append(f"{where}: sums {gauge}, the same on every replica: {expr}")
        if len(re.findall(_MAX_OF.format(gauge=gauge), expr)) != uses:
            problems.append(f"{where}: {gauge} not under max(...): {expr}")
    return problems


def test_the_rule_itself_refuses_a_sum_and_a_bare_gauge() -> None:
    gauge = STORE_GAUGES[0]
    assert aggregation_problems("x", f"max({gauge})") == []
    assert aggregation_problems("x", f"max by (job) ({gauge}) > 3") == []
    assert aggregation_problems("x", f"sum({gauge})")
    assert aggregation_problems("x", f"sum(max by (instance) ({gauge}))")
    assert aggregation_problems("x", f"{gauge} > 3")
    assert aggregation_problems("x", f"max({gauge}) + {gauge}")


def test_every_dashboard_expression_takes_the_max_of_a_store_read_gauge() -> None:
    expressions = list(_dashboard_expressions())
    on_gauges = [expr for _, expr in expressions if any(g in expr for g in STORE_GAUGES)]
    # The sessions panel and the pending approvals panel, at least.
    assert {g for g in STORE_GAUGES for expr in on_gauges if g in expr} == set(STORE_GAUGES)
    problems = [p for title, expr in expressions for p in aggregation_problems(title, expr)]
    assert problems == []


def test_every_rule_takes_the_max_of_a_store_read_gauge() -> None:
    problems = [p for name, expr in _rule_expressions() for p in aggregation_problems(name, expr)]
    assert problems == []
