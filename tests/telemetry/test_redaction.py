"""Content capture (docs/architecture.md): off by default; when on, scrubbed and truncated; secrets
never leave the process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

import telemetry
from telemetry import names as n
from telemetry.redaction import REDACTED, digest, safe_content, safe_json, scrub, truncate
from tests.support.fixtures import hub_in
from tests.support.otel import Telemetered

MARKER = "ZEBRA-MARKER-4217"
API_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5"  # 8 + 30 characters


def _exported(telemetered: Telemetered) -> list[tuple[str, str]]:
    """Every string a backend would receive, with where it sits: span names, attributes,
    event attributes, status descriptions, link attributes, log bodies and attributes."""
    found: list[tuple[str, Any]] = []
    for span in telemetered.spans():
        found.append((f"{span.name}: name", span.name))
        found.append((f"{span.name}: status", span.status.description))
        found.extend((f"{span.name}: {k}", v) for k, v in (span.attributes or {}).items())
        for event in span.events:
            found.extend(
                (f"{span.name}/{event.name}: {k}", v) for k, v in (event.attributes or {}).items()
            )
        for link in span.links:
            found.extend((f"{span.name}/link: {k}", v) for k, v in (link.attributes or {}).items())
    for log in telemetered.logs():
        found.append(("log: body", log.log_record.body))
        found.extend((f"log: {k}", v) for k, v in (log.log_record.attributes or {}).items())
    strings: list[tuple[str, str]] = []
    for where, value in found:
        if isinstance(value, str):
            strings.append((where, value))
        elif isinstance(value, tuple | list):
            strings.extend((where, str(item)) for item in value)
    return strings


def _exported_strings(telemetered: Telemetered) -> list[str]:
    return [value for _, value in _exported(telemetered)]


def _containing(telemetered: Telemetered, needle: str) -> list[str]:
    return [where for where, value in _exported(telemetered) if needle in value]


def _emit_content_events(hub: telemetry.Telemetry, text: str) -> None:
    request = telemetry.RequestTrace(hub.spans, "s1")
    with request.request.activate():
        hub.emit(telemetry.MessageAdded(session_id="s1", role="user", content=text))
    run = request.agent("coder")
    hub.emit(
        telemetry.ToolExecutionRequested(
            tool="write_file",
            call_id="c1",
            agent="coder",
            arguments={"path": "a.py", "content": text},
            session_id="s1",
        ),
        span=run.span,
    )
    tool = request.tool("write_file", "c1", run=run)
    hub.emit(
        telemetry.HITLDecisionMade(
            tool="write_file", call_id="c1", decision="REJECT", feedback=text, session_id="s1"
        ),
        span=tool.span,
    )
    tool.stop(n.OUTCOME_REJECTED)
    request.finish(n.OUTCOME_COMPLETED)


async def test_content_never_exported_by_default(telemetered: Telemetered, tmp_path: Path) -> None:
    async with hub_in(tmp_path, settings=telemetry.TelemetrySettings()) as hub:
        _emit_content_events(hub, f"please write {MARKER} with {API_KEY}")
        assert hub.audit is not None
        audit = hub.audit.get_audit_log()
    exported = _exported_strings(telemetered)
    assert exported  # the flow did export something
    assert _containing(telemetered, MARKER) == []
    assert telemetered.logs()  # the decision's audit log record went out, without content
    # The local audit store says what was decided (the human's feedback), scrubbed.
    (decision,) = [r for r in audit if r["event_type"] == n.AUDIT_HITL_DECISION_MADE]
    assert MARKER in decision["feedback"]
    assert API_KEY not in repr(audit)


async def test_the_audit_store_keeps_no_content_when_told(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    async with hub_in(tmp_path, settings=telemetry.TelemetrySettings(audit_arguments=False)) as hub:
        _emit_content_events(hub, f"please write {MARKER}")
        assert hub.audit is not None
        audit = hub.audit.get_audit_log()
    assert audit
    assert MARKER not in repr(audit)


async def test_content_length_and_digest_are_always_recorded(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    async with hub_in(tmp_path, settings=telemetry.TelemetrySettings()) as hub:
        _emit_content_events(hub, MARKER)
    (added,) = telemetered.span(n.SPAN_AGENT_REQUEST).events
    assert (added.attributes or {})[n.MESSAGE_CONTENT_LENGTH] == len(MARKER)
    decision = next(
        e
        for e in telemetered.span("execute_tool write_file").events
        if e.name == n.EVENT_HITL_DECISION_MADE
    )
    assert (decision.attributes or {})[f"{n.HITL_FEEDBACK}_sha256"] == digest(MARKER)


async def test_content_exported_scrubbed_and_truncated_with_capture_on(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    settings = telemetry.TelemetrySettings(capture_content=True, capture_max_length=40)
    text = f"{MARKER} key={API_KEY} " + "x" * 200
    async with hub_in(tmp_path, settings=settings) as hub:
        _emit_content_events(hub, text)
    request = telemetered.span(n.SPAN_AGENT_REQUEST)
    content = str((request.events[0].attributes or {})[n.MESSAGE_CONTENT])
    assert content.startswith(MARKER)
    assert content == safe_content(text, 40)
    assert content.startswith(safe_content(text, 10_000)[:40])
    assert len(content) < len(text)
    agent = telemetered.span("invoke_agent coder")
    (requested,) = [e for e in agent.events if e.name == n.EVENT_TOOL_EXECUTION_REQUESTED]
    assert MARKER in str((requested.attributes or {})[n.GEN_AI_TOOL_CALL_ARGUMENTS])
    tool = telemetered.span("execute_tool write_file")
    (decided,) = [e for e in tool.events if e.name == n.EVENT_HITL_DECISION_MADE]
    feedback = str((decided.attributes or {})[n.HITL_FEEDBACK])
    assert feedback == safe_content(text, 40)
    (log,) = [
        log
        for log in telemetered.logs()
        if (log.log_record.attributes or {}).get(n.AUDIT_EVENT_TYPE) == n.AUDIT_HITL_DECISION_MADE
    ]
    assert (log.log_record.attributes or {})[n.HITL_FEEDBACK] == feedback
    assert _containing(telemetered, API_KEY) == []


async def test_api_key_scrubbed_even_with_capture_on(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    async with hub_in(tmp_path, settings=telemetry.TelemetrySettings(capture_content=True)) as hub:
        _emit_content_events(hub, f"use {API_KEY} please")
    exported = _exported_strings(telemetered)
    assert [value for value in exported if REDACTED in value]
    assert _containing(telemetered, API_KEY) == []
    assert _containing(telemetered, API_KEY[:20]) == []


async def test_capture_on_fixture_turns_capture_on_through_the_environment(
    telemetered: Telemetered, capture_on: None, tmp_path: Path
) -> None:
    async with hub_in(tmp_path) as hub:
        assert hub.settings.capture_content
        with trace.get_tracer("tests").start_as_current_span("s"):
            hub.emit(telemetry.MessageAdded(session_id="s1", role="user", content=MARKER))
    (event,) = telemetered.span("s").events
    assert (event.attributes or {})[n.MESSAGE_CONTENT] == MARKER


# A secret inside an exception message could leak through span.record_exception's
# ``exception.stacktrace`` or the status description. Provider errors routinely echo the
# API key ("Incorrect API key provided: sk-proj-…").
async def test_secret_in_an_exception_message_never_reaches_exported_spans(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    async with hub_in(tmp_path, settings=telemetry.TelemetrySettings()) as hub:
        request = telemetry.RequestTrace(hub.spans, "s1")
        run = request.agent("coder")
        request.tool("execute_command", "c1", run=run)
        request.finish(n.OUTCOME_ERROR, RuntimeError(f"Incorrect API key provided: {API_KEY}"))
        assert hub.audit is not None
        audit = hub.audit.get_audit_log()
    leaks = _containing(telemetered, API_KEY)
    assert leaks == [], "secret exported at: " + "; ".join(leaks)
    assert API_KEY not in repr(audit)


@pytest.mark.parametrize(
    ("secret", "kept"),
    [
        (API_KEY, "token "),
        ("ghp_" + "a" * 36, "token "),
        ("AKIA" + "ABCDEFGHIJKLMNOP", "token "),
        ("Bearer abcdefghijklmnop.qrstu", "token "),
        ("eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.SflKxwRJSMeKKF2QT4", "token "),
    ],
)
def test_scrub_replaces_secret_shapes(secret: str, kept: str) -> None:
    scrubbed = telemetry.scrub(f"{kept}{secret} end")
    assert secret not in scrubbed
    assert REDACTED in scrubbed
    assert scrubbed.startswith(kept.strip())
    assert scrubbed.endswith(" end")


def test_scrub_redacts_assignments_and_url_credentials() -> None:
    assert telemetry.scrub("password=hunter22") == f"password={REDACTED}"
    assert telemetry.scrub('api_key: "abcdef"') == f'api_key: "{REDACTED}"'
    assert "s3cr3t" not in telemetry.scrub("postgres://user:s3cr3t@db/x")
    assert telemetry.scrub("nothing to see here") == "nothing to see here"


def test_truncate_bounds_length_and_says_so() -> None:
    assert truncate("abc", 5) == "abc"
    cut = truncate("a" * 50, 10)
    assert cut.startswith("a" * 10)
    assert "truncated 40" in cut
    assert not cut.startswith("a" * 11)


def test_safe_json_scrubs_every_string_and_bounds_the_structure() -> None:
    value = {
        "path": "a.py",
        "content": f"token={API_KEY}\n" + "x" * 100,
        "nested": [{"deep": API_KEY}] * 3,
        "many": list(range(150)),
        "n": 3,
        "flag": True,
        "none": None,
    }
    kept = safe_json(value, 40)
    assert API_KEY not in repr(kept)
    assert kept["path"] == "a.py" and kept["n"] == 3 and kept["flag"] is True
    assert kept["none"] is None
    assert kept["content"] == safe_content(value["content"], 40)
    assert len(kept["many"]) == 101 and "truncated 50 items" in kept["many"][-1]
    deep: object = "leaf"
    for _ in range(20):
        deep = {"d": deep}
    assert "nested too deep" in repr(safe_json(deep, 40))


def test_approval_audit_details_keep_the_arguments_scrubbed() -> None:
    event = telemetry.ToolApprovalRequired(
        tool="write_file",
        call_id="c1",
        reason="writes",
        arguments={"path": "a.py", "content": f"key={API_KEY}"},
    )
    kept = event.audit_details(telemetry.TelemetrySettings())
    assert kept["arguments"]["path"] == "a.py"
    assert API_KEY not in repr(kept)
    assert (
        event.audit_details(telemetry.TelemetrySettings(audit_arguments=False))["arguments"] is None
    )
    assert n.GEN_AI_TOOL_CALL_ARGUMENTS not in event.attributes(telemetry.TelemetrySettings())


def test_scrub_masks_the_given_secrets_whatever_their_shape() -> None:
    key = "plainly-not-shaped-like-a-key"
    scrubbed = telemetry.scrub(f"401: key {key} refused; again {key}", secrets=[key, None, "ab"])
    assert key not in scrubbed
    assert scrubbed.count(REDACTED) == 2
    assert telemetry.scrub("ab and abc stay", secrets=["ab"]) == "ab and abc stay"  # too short


@pytest.mark.parametrize(
    "secret",
    [
        # the shapes the OpenAI-compatible provider's own scrubber masked, which this one
        # replaces: any bearer token, and sk- keys from 8 characters on
        "Bearer abc",
        "bearer x.y/z+=",
        "Authorization: Bearer tok3n",
        "sk-12345678",
        "sk-proj-abcDEF_12",
    ],
)
def test_scrub_covers_the_provider_error_shapes(secret: str) -> None:
    token = secret.split()[-1]
    scrubbed = telemetry.scrub(f'{{"error": "{secret}", "x": 1}}')
    assert token not in scrubbed
    assert REDACTED in scrubbed
    assert scrubbed.endswith('", "x": 1}')


def test_an_error_type_named_after_authentication_is_not_a_secret() -> None:
    text = "AuthenticationError: HTTP 401: Incorrect API key provided: sk-abc123def456ghi789jkl"
    scrubbed = scrub(text)
    assert scrubbed.startswith("AuthenticationError: HTTP 401")
    assert "sk-abc123" not in scrubbed
    assert scrub("X-Internal-Auth: supersecretvalue") == "X-Internal-Auth: [REDACTED]"
