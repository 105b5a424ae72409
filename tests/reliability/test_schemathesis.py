"""Item 4a, hostile input from the service's own contract: Schemathesis generates requests
for every operation in ``/openapi.json`` (a bounded number of examples each, positive and
negative) and sends them to the app under a real uvicorn server: no 500, and no response
that breaks the schema.

(The Schemathesis pytest plugin's lazy ``from_fixture`` does not run under pytest 9, so the
operations are driven with Hypothesis directly; same strategies, same checks.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agent_runtime.app import create_app
from agent_runtime.settings import Settings
from tests.reliability.support import scale
from tests.support.otel import Telemetered
from tests.support.postgres import fresh_database
from tests.support.server import RunningServer, serve

EXAMPLES = scale(25, 400)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_server(
    request: pytest.FixtureRequest, otel: Telemetered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The app on each store in turn: the embedded SQLite file, then a PostgreSQL database
    of its own on the session's server."""
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    with contextlib.ExitStack() as stack:
        url = None
        if request.param == "postgresql":
            url = stack.enter_context(fresh_database(request.getfixturevalue("postgres_server")))
        # a generated message may ask for a tool: approvals time out fast so no call hangs
        app = create_app(Settings(data_dir=data, approval_timeout_s=0.2, database_url=url))
        with serve(app) as running:
            yield running


def _run_every_operation(url: str, checks: list) -> tuple[list[str], list[str]]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    labels, failures = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case) -> None:
            case.call_and_validate(checks=checks, timeout=30)

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}"[:2000])
    return labels, failures


def test_no_server_error_and_no_schema_violation(api_server: RunningServer) -> None:
    labels, failures = _run_every_operation(api_server.url, CHECKS)
    operations = api_server.app.openapi()["paths"]
    assert len(labels) == sum(len(methods) for methods in operations.values()), labels
    assert failures == [], "\n\n".join(failures)


def test_every_status_code_is_documented(api_server: RunningServer) -> None:
    _, failures = _run_every_operation(api_server.url, [status_code_conformance])
    assert failures == [], "\n\n".join(failures)
