"""Bad input gets a 4xx with a JSON body naming the problem; never a 500."""

from __future__ import annotations

import httpx
import pytest

from agent_runtime.app import create_app
from tests.service.conftest import KEY, Conversation
from tests.support.server import serve


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) >= {"code", "message"} and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{not json", 422),
        (b'{"message": "hi"}', 422),
        (b'{"session_id": 5, "message": "hi"}', 422),
        (b'{"session_id": "a", "message": ["x"]}', 422),
        (b'{"session_id": "../etc", "message": "hi"}', 422),
        (b'{"session_id": "a", "message": "hi", "agent": "nobody"}', 422),
        (b"[]", 422),
    ],
)
async def test_bad_message_bodies_are_422_json(
    client: httpx.AsyncClient, content: bytes, status: int
) -> None:
    response = await client.post(
        "/agent/message/stream", content=content, headers={"content-type": "application/json"}
    )
    _assert_error(response, status)


async def test_oversize_body_is_413(client: httpx.AsyncClient) -> None:
    big = {"session_id": "s", "message": "x" * (2 * 1024 * 1024)}
    _assert_error(await client.post("/agent/message/stream", json=big), 413, "body_too_large")


async def test_unknown_call_id_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/approvals/call_nope", json={"decision": "APPROVE"})
    _assert_error(response, 404, "approval_not_found")


async def test_bad_decision_value_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/approvals/call_x", json={"decision": "MAYBE"})
    _assert_error(response, 422)


async def test_second_decision_is_409_and_edit_without_arguments_is_422(
    client: httpx.AsyncClient,
) -> None:
    conversation = Conversation(client)
    call_ids: list[str] = []

    async with client.stream(
        "POST", "/agent/message/stream", json={"session_id": "s-409", "message": "Create a file"}
    ) as response:
        from tests.support.server import sse_events

        async for event in sse_events(response):
            if event.event == "approval_required":
                call_id = event.data["call_id"]
                call_ids.append(call_id)
                _assert_error(
                    await client.post(f"/v1/approvals/{call_id}", json={"decision": "EDIT"}),
                    422,
                    "edit_requires_arguments",
                )
                _assert_error(
                    await client.post(
                        f"/v1/approvals/{call_id}",
                        json={"decision": "EDIT", "arguments": {"path": 5}},
                    ),
                    422,
                    "invalid_edit_arguments",
                )
                first = await client.post(f"/v1/approvals/{call_id}", json={"decision": "APPROVE"})
                assert first.status_code == 200
                _assert_error(
                    await client.post(f"/v1/approvals/{call_id}", json={"decision": "REJECT"}),
                    409,
                    "approval_already_decided",
                )
    assert call_ids and conversation.events == []


async def test_unknown_session_is_404_and_deleted_session_is_gone(
    client: httpx.AsyncClient,
) -> None:
    _assert_error(await client.get("/v1/sessions/missing"), 404, "session_not_found")
    created = await client.post("/v1/sessions", json={"session_id": "s-del"})
    assert created.status_code == 201 and created.json()["session_id"] == "s-del"
    _assert_error(await client.post("/v1/sessions", json={"session_id": "s-del"}), 409)
    assert (await client.delete("/v1/sessions/s-del")).status_code == 200
    _assert_error(await client.get("/v1/sessions/s-del"), 404)
    _assert_error(await client.delete("/v1/sessions/s-del"), 404)
    audit = (await client.get("/v1/audit", params={"event_type": "session.deleted"})).json()
    assert [r["session_id"] for r in audit] == ["s-del"]


async def test_unknown_route_and_bad_timeline_id_are_json(client: httpx.AsyncClient) -> None:
    _assert_error(await client.get("/nope"), 404)
    _assert_error(await client.get("/v1/traces/xyz/timeline"), 422)
    _assert_error(await client.get(f"/v1/traces/{'0' * 32}/timeline"), 404)


async def test_auth_is_required_when_a_key_is_set(telemetered, make_settings) -> None:
    with serve(create_app(make_settings(AGENT_RUNTIME_INTERNAL_KEY=KEY))) as running:
        async with httpx.AsyncClient(base_url=running.url) as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/openapi.json")).status_code == 200
            _assert_error(await http.get("/v1/metrics"), 401, "unauthorized")
            _assert_error(await http.get("/v1/metrics", headers={"X-Internal-Auth": "wrong"}), 401)
            missing = await http.post(
                "/agent/message/stream", json={"session_id": "a", "message": "b"}
            )
            _assert_error(missing, 401)
            assert KEY not in missing.text
            _assert_error(await http.post("/v1/approvals/x", json={"decision": "APPROVE"}), 401)
            ok = await http.get("/v1/metrics", headers={"X-Internal-Auth": KEY})
            assert ok.status_code == 200


async def test_path_traversal_is_a_failed_tool_call_never_a_file_outside(
    client: httpx.AsyncClient, make_settings
) -> None:
    conversation = Conversation(client)
    reject = {"decision": "REJECT"}
    await conversation.send("s-trav", "Fix the bug in ../../outside.py", decide=reject)
    results = conversation.of("tool_result")
    assert results and results[0]["outcome"] == "failed"
    assert not (make_settings().data_dir / "outside.py").exists()
    assert not (make_settings().data_dir.parent / "outside.py").exists()


async def test_every_response_carries_its_correlation_id(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/healthz"),
        await client.get("/readyz"),
        await client.get("/v1/metrics"),
        await client.get("/nope"),
        await client.post("/v1/approvals/x", json={"decision": "APPROVE"}),
    ):
        correlation_id = response.headers["x-correlation-id"]
        assert len(correlation_id) == 32 and int(correlation_id, 16) != 0
        assert response.headers["traceresponse"].split("-")[1] == correlation_id
