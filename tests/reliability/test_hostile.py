"""Item 4b, hostile input, targeted: oversize and malformed bodies, huge headers, trace
context garbage, a consumer that reads nothing, decisions for another session's call and
replayed ones, path traversal and symlink escapes in the file tools, command injection in
``execute_command``."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest

from agent_runtime.app import create_app
from telemetry import names as n
from tests.reliability.support import (
    PROVIDER_KEY,
    converse,
    poll,
    running_service,
    scale,
    span_text,
)
from tests.support.otel import Telemetered
from tests.support.server import serve

MARK = "zq9hostilemarker"


@pytest.fixture
def served(telemetered: Telemetered, make_settings, database_url: str | None):
    """The app on each store in turn (bad input gets the same answers on both)."""
    with serve(create_app(make_settings(database_url=database_url))) as running:
        yield running


def _is_error_json(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])


async def test_oversize_malformed_and_nested_bodies_are_4xx(served) -> None:
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        big = b'{"session_id": "s", "message": "' + b"a" * (1_048_576 + 10) + b'"}'
        _is_error_json(await http.post("/agent/message/stream", content=big, headers=headers), 413)

        async def chunked():  # no Content-Length: counted as it arrives
            for _ in range(40):
                yield b"a" * 65_536

        _is_error_json(await http.post("/v1/sessions", content=chunked(), headers=headers), 413)
        nested = b"[" * 200_000 + b"]" * 200_000
        _is_error_json(
            await http.post("/agent/message/stream", content=nested, headers=headers), 400
        )
        deep_args = {"decision": "EDIT", "arguments": {"path": json.loads("[" * 500 + "]" * 500)}}
        response = await http.post("/v1/approvals/call_nope", json=deep_args)
        assert 400 <= response.status_code < 500
        invalid_utf8 = b'{"session_id": "s\xff\xfe", "message": "hi \xc3\x28"}'
        response = await http.post("/agent/message/stream", content=invalid_utf8, headers=headers)
        assert response.status_code in (400, 422) and response.json()["error"]
        response = await http.post(
            "/v1/sessions", content=b"\xff\xfe\x00", headers={"content-type": "application/json"}
        )
        assert response.status_code in (400, 422) and response.json()["error"]
        for hostile_header in (b"\xff\xfe", b"a" * 60_000):
            response = await http.get("/v1/metrics", headers={"X-Internal-Auth": hostile_header})
            assert response.status_code == 200
        assert (await http.get("/readyz")).status_code == 200


def test_huge_headers_are_refused_by_the_server_not_buffered(served) -> None:
    port = int(served.url.rsplit(":", 1)[1])
    requests = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(5_000))
        + b"\r\n",
    ]
    for raw in requests:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            try:
                sock.sendall(raw)
                answer = sock.recv(64)
            except ConnectionResetError:
                answer = b"reset"
        assert answer.startswith(b"HTTP/1.1 400") or answer == b"reset", answer
    assert httpx.get(f"{served.url}/healthz").status_code == 200


async def test_trace_context_garbage_starts_fresh_and_is_never_copied(
    served, telemetered: Telemetered
) -> None:
    garbage = [
        {"traceparent": f"00-{MARK}-zz-01"},
        {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"},
        {"traceparent": "ff-" + "a" * 32 + "-" + "b" * 16 + "-01-" + MARK},
        {
            "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
            "tracestate": f"{MARK}=x," * 500,
        },
        {"baggage": f"{MARK}=1;" * 3 + "user.secret=" + MARK},
        {"baggage": ",".join(f"k{i}={MARK}" for i in range(4_000))},  # ~90 KB of baggage
        {"traceparent": MARK * 100, "tracestate": "\x01\x02", "baggage": "%%%" + MARK},
    ]
    valid_trace = "a" * 32
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        for index, headers in enumerate(garbage):
            outcome = await converse(http, f"tc-{index}", "What is a closure?", headers=headers)
            assert outcome.ok, (headers.keys(), outcome.error)
            if index != 3:
                assert outcome.correlation_id not in (None, "0" * 32)
        continued = await converse(
            http,
            "tc-ok",
            "What is a closure?",
            headers={"traceparent": f"00-{valid_trace}-{'b' * 16}-01", "baggage": f"k={MARK}"},
        )
    assert continued.correlation_id == valid_trace  # a valid traceparent is continued
    poll(
        lambda: sum(1 for s in telemetered.spans() if s.name == n.SPAN_AGENT_REQUEST) == 8,
        timeout_s=10,
        what="every request span",
    )
    copied = [s.name for s in telemetered.spans() if MARK in span_text(s)]
    assert copied == []


async def test_replayed_and_concurrent_decisions_are_409_and_audited_once(served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        outcome = await converse(
            http, "replay", "Create a sorting function", stop_at="approval_required"
        )
        call_id = outcome.of("approval_required")[0]["call_id"]
        racing = await asyncio.gather(
            *(
                http.post(f"/v1/approvals/{call_id}", json={"decision": d})
                for d in ["APPROVE", "REJECT"] * scale(8, 50)
            )
        )
        statuses = sorted(r.status_code for r in racing)
        assert statuses == [200] + [409] * (len(racing) - 1)
        replay = await http.post(f"/v1/approvals/{call_id}", json={"decision": "APPROVE"})
        _is_error_json(replay, 409)
        audit = (await http.get("/v1/audit", params={"event_type": "hitl_decision_made"})).json()
    assert [r["call_id"] for r in audit] == [call_id]


async def test_a_call_id_alone_decides_any_sessions_call(served) -> None:
    """Current behaviour, documented: approvals are addressed by call id only. There is no
    session (or user) scoping on ``POST /v1/approvals/{call_id}``: whoever holds the
    internal key and the call id (128 random bits, listed by ``GET /v1/approvals``) can
    decide any session's call."""
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        outcome = await converse(
            http, "victim", "Create a sorting function", stop_at="approval_required"
        )
        call_id = outcome.of("approval_required")[0]["call_id"]
        listed = (await http.get("/v1/approvals", params={"session_id": "victim"})).json()
        other = (await http.get("/v1/approvals", params={"session_id": "attacker"})).json()
        assert [p["call_id"] for p in listed] == [call_id] and other == []
        # the "attacker" session's client decides the victim's call: accepted
        await converse(http, "attacker", "What is a closure?")
        response = await http.post(
            f"/v1/approvals/{call_id}", json={"decision": "REJECT", "feedback": "attacker"}
        )
    assert response.status_code == 200
    assert response.json()["session_id"] == "victim"


async def _decide_tool(http, session_id: str, message: str, decision: dict) -> dict:
    outcome = await converse(http, session_id, message, stop_at="approval_required")
    call_id = outcome.of("approval_required")[0]["call_id"]
    response = await http.post(f"/v1/approvals/{call_id}", json=decision)
    assert response.status_code == 200, response.text
    return response.json()["result"]


async def test_file_tools_refuse_traversal_and_symlink_escapes(
    telemetered: Telemetered, make_settings, tmp_path: Path
) -> None:
    settings = make_settings()
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.py"
    secret.write_text(f"TOKEN = '{MARK}'\n")
    workspace = settings.data_dir / "workspaces" / "sym"
    workspace.mkdir(parents=True)
    (workspace / "evil.py").symlink_to(secret)
    (workspace / "evildir").symlink_to(outside, target_is_directory=True)
    with serve(create_app(settings)) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            # read_file through the debug agent: the path comes from the message
            events = []
            for sid, path in [
                ("trav", "../../../outside/secret.py"),
                ("sym", "evil.py"),
                ("sym", "evildir/secret.py"),
                ("abs", str(secret)),
            ]:
                outcome = await converse(
                    http, sid, f"Fix the bug in {path}", stop_at="approval_required"
                )
                results = outcome.of("tool_result")
                assert results and results[0]["tool"] == "read_file"
                assert results[0]["outcome"] == "failed", results[0]
                events += [json.dumps(e.data) for e in outcome.events]
                # debug handed over to coder, whose write waits: say no, so the session's
                # next message is not refused for a pending approval
                for asked in outcome.of("approval_required"):
                    rejected = await http.post(
                        f"/v1/approvals/{asked['call_id']}", json={"decision": "REJECT"}
                    )
                    assert rejected.status_code == 200
            # write_file with a human's EDIT pointing outside: refused, nothing written
            targets = [
                "../../../outside/new.py",
                str(outside / "abs.py"),
                "evil.py",
                "evildir/new2.py",
                "a/../../../../outside/new3.py",
                "x\x00.py",
            ]
            for target in targets:
                result = await _decide_tool(
                    http,
                    "sym",
                    "Create a helper module",
                    {"decision": "EDIT", "arguments": {"path": target, "content": "pwned"}},
                )
                assert result["outcome"] == "failed", (target, result)
    assert all(MARK not in text for text in events)
    assert secret.read_text() == f"TOKEN = '{MARK}'\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.py"]
    assert all(MARK not in span_text(s) for s in telemetered.spans())


async def test_execute_command_has_no_shell_and_no_secrets(
    telemetered: Telemetered, make_settings, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_KEY)
    pwned = tmp_path / "pwned"
    injections = [
        f"echo hi; touch {pwned}",
        f"echo hi && touch {pwned}",
        f"echo hi | touch {pwned}",
        f"echo $(touch {pwned})",
        f"echo `touch {pwned}`",
        f"echo hi > {pwned}",
        f"echo hi\ntouch {pwned}",
    ]
    refused = [
        f"touch {pwned}",
        f"/bin/sh -c 'touch {pwned}'",
        f"sh -c 'touch {pwned}'",
        f"../../../bin/touch {pwned}",
        "rm -rf /",
        "'unbalanced",
        "",
    ]
    with serve(create_app(make_settings())) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            for index, command in enumerate(injections):
                result = await _decide_tool(
                    http,
                    f"inj{index}",
                    "Add and run the tests",
                    {"decision": "EDIT", "arguments": {"command": command}},
                )
                assert result["outcome"] == "completed", result
                assert result["output"].startswith("exit code: 0")
            for index, command in enumerate(refused):
                result = await _decide_tool(
                    http,
                    f"ref{index}",
                    "Add and run the tests",
                    {"decision": "EDIT", "arguments": {"command": command}},
                )
                assert result["outcome"] == "failed", (command, result)
            env_dump = await _decide_tool(
                http,
                "envdump",
                "Add and run the tests",
                {
                    "decision": "EDIT",
                    "arguments": {
                        "command": "python -c 'import os; print(sorted(os.environ.items()))'"
                    },
                },
            )
    assert not pwned.exists()
    assert env_dump["outcome"] == "completed"
    assert PROVIDER_KEY not in env_dump["output"] and "AGENT_RUNTIME" not in env_dump["output"]


async def test_slow_consumer_keeps_server_memory_and_handles_bounded(tmp_path: Path) -> None:
    """Clients that send a request and never read: the server stays responsive, and once
    they go away its file handles come back and its memory has not grown with them."""
    readers = scale(30, 200)
    with running_service(tmp_path, tmp_path / "data", name="slow") as service:
        port = int(service.url.rsplit(":", 1)[1])
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
            for i in range(5):  # warm up
                assert (await converse(http, f"warm{i}", "What is a closure?")).ok
            fds_before, rss_before = service.num_fds(), service.rss()
            sockets = []
            for index in range(readers):
                sock = socket.create_connection(("127.0.0.1", port))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                message = "Create a sorting function" if index % 2 else "What is a closure?"
                body = json.dumps({"session_id": f"slow-{index}", "message": message}).encode()
                sock.sendall(
                    b"POST /agent/message/stream HTTP/1.1\r\nHost: x\r\n"
                    b"content-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                sockets.append(sock)  # never read
            # the server keeps serving everyone else meanwhile
            pending = await _poll_async(
                lambda: http.get("/v1/approvals"), lambda r: len(r.json()) == readers // 2
            )
            assert len(pending.json()) == readers // 2
            for i in range(5):
                assert (await converse(http, f"alive{i}", "What is a closure?")).ok
            fds_loaded, rss_loaded = service.num_fds(), service.rss()
            for sock in sockets:
                sock.close()
            poll(
                lambda: service.num_fds() <= fds_before + 2,
                timeout_s=20,
                what="the server to release the slow consumers' sockets",
            )
            rss_after, fds_after = service.rss(), service.num_fds()
    assert rss_after - rss_before <= 30 * 2**20
    print(
        f"\nslow consumers: {readers} never-reading clients; server fds {fds_before} -> "
        f"{fds_loaded} -> {fds_after}; RSS {rss_before / 2**20:.1f} -> "
        f"{rss_loaded / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB"
    )


async def _poll_async(call, ok, timeout_s: float = 20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        response = await call()
        if ok(response) or loop.time() > deadline:
            return response
        await asyncio.sleep(0.02)


async def test_stream_to_a_deleted_session_is_404_not_500(served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        assert (await http.post("/v1/sessions", json={"session_id": "gone"})).status_code == 201
        assert (await http.delete("/v1/sessions/gone")).status_code == 200
        try:
            response = await http.post(
                "/agent/message/stream", json={"session_id": "gone", "message": "hello"}
            )
        except httpx.TransportError as exc:  # the server broke the connection
            raise AssertionError(f"connection broken: {exc!r}") from exc
    _is_error_json(response, 404)
