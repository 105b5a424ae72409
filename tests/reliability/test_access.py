"""Item 5, access: with ``AGENT_RUNTIME_INTERNAL_KEY`` set, every route but the health
probes and the schema answers 401 without the key (or with a wrong one) and says nothing
more; approvals are decidable only with the key; CORS is closed by default; and no secret
(the key, the provider API key) ends up in a span, a log record, an audit record or an
error body."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx
import pytest

from agent_runtime.app import create_app
from tests.reliability.support import KEY, PROVIDER_KEY, converse, leaks, span_text
from tests.support.otel import Telemetered
from tests.support.server import serve

OPEN = {"/healthz", "/readyz", "/openapi.json"}
UNAUTHORIZED = {
    "error": {"code": "unauthorized", "message": "missing or invalid X-Internal-Auth header"}
}
WRONG_KEYS: list[str | bytes | None] = [
    None,
    "",
    "x",
    KEY[:-1] + "Y",
    KEY + "extra",
    KEY.upper(),
    "ünïcødé-ključ-0123456".encode(),
]
SAMPLE_BODIES: dict[str, Any] = {
    "/agent/message/stream": {"session_id": "acc-1", "message": "hello"},
    "/v1/approvals/{call_id}": {"decision": "APPROVE"},
    "/v1/sessions": {"session_id": "acc-2"},
}


def _operations(app) -> list[tuple[str, str, str]]:
    """(method, concrete path, templated path) of every operation in the schema."""
    ops = []
    for path, methods in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x" * 32, path)
        ops += [(method.upper(), concrete, path) for method in methods]
    return ops


@pytest.fixture
def keyed(telemetered: Telemetered, make_settings):
    app = create_app(make_settings(internal_key=KEY, openai_api_key=PROVIDER_KEY))
    with serve(app) as running:
        yield app, running.url


async def test_every_route_but_health_needs_the_key(keyed) -> None:
    app, url = keyed
    checked = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for method, path, template in _operations(app):
            body = SAMPLE_BODIES.get(template)
            for wrong in WRONG_KEYS:
                headers = {} if wrong is None else {"X-Internal-Auth": wrong}
                response = await http.request(method, path, json=body, headers=headers)
                if template in OPEN:
                    assert response.status_code in (200, 503), (method, path)
                    continue
                assert response.status_code == 401, (method, path, wrong, response.text)
                assert response.json() == UNAUTHORIZED  # no detail: nothing about the key
                assert "www-authenticate" not in response.headers
                checked += 1
        assert (await http.get("/openapi.json")).status_code == 200
    assert checked >= 8 * len(WRONG_KEYS)


async def test_interactive_docs_need_the_key_too(keyed) -> None:
    _, url = keyed
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        statuses = {p: (await http.get(p)).status_code for p in ("/docs", "/redoc")}
    assert statuses == {"/docs": 401, "/redoc": 401}


async def test_unauthenticated_malformed_body_gets_401_not_parser_details(keyed) -> None:
    _, url = keyed
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post(
            "/v1/approvals/call_x",
            content=b'{"decision": ',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 401


async def test_approvals_are_decidable_only_with_the_key(keyed) -> None:
    _, url = keyed
    good = {"X-Internal-Auth": KEY}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        outcome = await converse(
            http,
            "acc-approve",
            "Create a sorting function",
            headers=good,
            stop_at="approval_required",
        )
        call_id = outcome.of("approval_required")[0]["call_id"]
        for wrong in WRONG_KEYS:
            headers = {} if wrong is None else {"X-Internal-Auth": wrong}
            for decision in ("APPROVE", "REJECT"):
                response = await http.post(
                    f"/v1/approvals/{call_id}", json={"decision": decision}, headers=headers
                )
                assert response.status_code == 401
        pending = (await http.get("/v1/approvals", headers=good)).json()
        assert [p["call_id"] for p in pending] == [call_id]
        decided = await http.post(
            f"/v1/approvals/{call_id}", json={"decision": "APPROVE"}, headers=good
        )
        assert decided.status_code == 200


async def test_cors_is_closed_by_default(keyed) -> None:
    _, url = keyed
    origin = "http://evil.example"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for path, method in (("/v1/metrics", "GET"), ("/agent/message/stream", "POST")):
            preflight = await http.options(
                path,
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "x-internal-auth, content-type",
                },
            )
            assert "access-control-allow-origin" not in preflight.headers
            assert "access-control-allow-credentials" not in preflight.headers
        simple = await http.get("/healthz", headers={"Origin": origin})
        assert "access-control-allow-origin" not in simple.headers


async def test_no_secret_in_spans_logs_audit_or_error_bodies(
    keyed, telemetered: Telemetered, capture_on, caplog: pytest.LogCaptureFixture
) -> None:
    """A workload that touches every sink (approve, reject, edit, a provider failure,
    validation and auth errors, content capture on), then a scan of all they hold.

    Secrets travel in headers and bodies, where a client may put them; not in URL paths,
    which the HTTP instrumentation records verbatim (``url.path``) and 404 messages echo,
    as they should: a URL is not a place for a secret."""
    app, url = keyed
    # The service logs at INFO (cli: install_log_correlation). At DEBUG, aiosqlite logs every
    # statement with its parameters (message text included): never run it at DEBUG with
    # real traffic.
    caplog.set_level(logging.INFO)
    good = {"X-Internal-Auth": KEY}
    bodies: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for index, decision in enumerate(
            [
                {"decision": "APPROVE"},
                {"decision": "REJECT", "feedback": f"no, api_key={PROVIDER_KEY}"},
                {
                    "decision": "EDIT",
                    "arguments": {"path": "x.py", "content": f"KEY = '{PROVIDER_KEY}'"},
                },
            ]
        ):
            outcome = await converse(
                http,
                f"acc-s{index}",
                f"Create a module, my token is {PROVIDER_KEY}",
                headers=good,
                stop_at="approval_required",
            )
            call_id = outcome.of("approval_required")[0]["call_id"]
            answer = await http.post(f"/v1/approvals/{call_id}", json=decision, headers=good)
            assert answer.status_code == 200
            # The run resumed here: its final text and the tool's output are the
            # conversation's own content, returned to the human who decided (as the SSE
            # stream returns it); everything else the answer says must hold no secret.
            said = answer.json()
            assert said["resumed"] == "here"
            bodies.append(
                json.dumps({k: v for k, v in said.items() if k not in ("text", "result")})
            )
        failing = await converse(http, "acc-fail", f"[fail] with {PROVIDER_KEY}", headers=good)
        bodies += [json.dumps(e.data) for e in failing.events]
        bad_requests = [
            http.post(
                "/agent/message/stream",
                json={"session_id": KEY + "/..", "message": KEY},
                headers=good,
            ),
            http.post(
                "/agent/message/stream",
                json={"session_id": "s", "message": PROVIDER_KEY, "extra": KEY},
                headers=good,
            ),
            http.post("/v1/approvals/call_x", json={"decision": KEY}, headers=good),
            http.get("/v1/metrics", headers={"X-Internal-Auth": KEY[:-2]}),
        ]
        for request in bad_requests:
            response = await request
            assert 400 <= response.status_code < 500
            bodies.append(response.text)
        audit = (await http.get("/v1/audit", params={"limit": 10_000}, headers=good)).json()
        metrics = (await http.get("/v1/metrics", headers=good)).text
    await app.state.runtime.telemetry.flush()  # the audit trail's queued log records
    secrets = [KEY, PROVIDER_KEY]
    found: list[str] = []
    spans = telemetered.spans()
    for span in spans:
        found += leaks(secrets, f"span {span.name!r}", span_text(span))
    logs = telemetered.logs()
    for record in logs:
        text = json.dumps(
            {"body": str(record.log_record.body), **dict(record.log_record.attributes or {})},
            default=str,
        )
        found += leaks(secrets, "OTel log record", text)
    for record in caplog.records:
        if record.name.startswith(("httpx", "httpcore")):  # this test's own client
            continue
        found += leaks(
            secrets, f"log {record.name}", record.getMessage() + str(record.exc_text or "")
        )
    found += leaks(secrets, "audit store", json.dumps(audit))
    found += leaks(secrets, "metrics", metrics)
    for body in bodies:
        found += leaks(secrets, "response body", body)
    assert found == [], "\n".join(found)
    assert len(spans) > 20 and len(logs) >= 9 and len(audit) >= 9
    print(
        f"\nsecrets scan: {len(spans)} spans, {len(logs)} OTel log records, "
        f"{len(caplog.records)} Python log records, {len(audit)} audit records, "
        f"{len(bodies)} response bodies: 0 leaks"
    )
