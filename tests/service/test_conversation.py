"""The conversation is the state: multi-turn memory, runs that resume, one run per session.

Every test here runs the service under a real uvicorn server with ``LLM_PROVIDER=openai``
against a local OpenAI-compatible server on 127.0.0.1 (real ``chat.completion.chunk`` SSE,
``tool_calls`` split over chunks) that answers as the offline scripted model does and
records every request, so the tests assert what the model really received.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_runtime.agents import AgentsFileError
from agent_runtime.app import create_app
from agent_runtime.runtime import Runtime, check_configuration
from agent_runtime.settings import Settings
from telemetry import names as n
from tests.service.conftest import Conversation
from tests.support.openai_server import ChatServer, RecordedRequest, scripted_responder
from tests.support.otel import Telemetered
from tests.support.server import RunningServer, serve, sse_events

API_KEY = "sk-test-conversation-0123456789abcdef"
SESSION_PROMPT = "The user prefers short answers."


@pytest.fixture
async def model_server() -> AsyncIterator[ChatServer]:
    async with ChatServer(scripted_responder) as server:
        yield server


@pytest.fixture
def openai_settings(
    model_server: ChatServer, make_settings: Callable[..., Settings]
) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return make_settings(
            llm_provider="openai",
            openai_base_url=model_server.base_url,
            openai_api_key=API_KEY,
            openai_model="test-model",
            **overrides,
        )

    return build


@pytest.fixture
def running(
    telemetered: Telemetered, openai_settings: Callable[..., Settings]
) -> Iterator[RunningServer]:
    with serve(create_app(openai_settings())) as server:
        yield server


@pytest.fixture
async def http(running: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
        yield client


def _roles(request: RecordedRequest) -> list[tuple[str, str]]:
    """(role, content or tool-call names) of every message the model received."""
    out = []
    for message in request.body["messages"]:
        if message.get("tool_calls"):
            out.append(
                ("assistant", ",".join(c["function"]["name"] for c in message["tool_calls"]))
            )
        else:
            out.append((message["role"], str(message.get("content") or "")))
    return out


def _agent_of(request: RecordedRequest) -> str:
    return (
        str(request.body["messages"][0]["content"]).split(" agent")[0].removeprefix("You are the ")
    )


async def _wait_released(running: RunningServer, call_id: str) -> None:
    """The server noticed the client went away: nobody waits for ``call_id`` there any more."""
    hitl = running.app.state.runtime.hitl
    deadline = time.monotonic() + 10
    while hitl.waiting_here(call_id):
        assert time.monotonic() < deadline, "the stream still waits after the disconnect"
        await asyncio.sleep(0.01)


async def _until_approval(http: httpx.AsyncClient, session_id: str, message: str) -> dict[str, Any]:
    """Send ``message``, read the stream up to its approval request, then go away."""
    async with http.stream(
        "POST", "/agent/message/stream", json={"session_id": session_id, "message": message}
    ) as response:
        assert response.status_code == 200
        async for event in sse_events(response):
            if event.event == "approval_required":
                return dict(event.data)
    raise AssertionError("the stream ended without asking for an approval")


async def test_the_model_receives_the_whole_conversation_in_order(
    http: httpx.AsyncClient, model_server: ChatServer
) -> None:
    created = await http.post(
        "/v1/sessions", json={"session_id": "conv-1", "system_prompt": SESSION_PROMPT}
    )
    assert created.status_code == 201
    first = Conversation(http)
    await first.send("conv-1", "Create a sorting function", decide={"decision": "APPROVE"})
    assert first.of("done")[0]["outcome"] == "completed"
    model_server.requests.clear()

    second = Conversation(http)
    await second.send("conv-1", "What is a closure?")
    assert second.of("done")[0]["agent"] == "ask"

    router, ask = model_server.requests
    assert _agent_of(router) == "orchestrator" and _agent_of(ask) == "ask"
    # Router and agent read the whole conversation: their own system prompt first, then
    # the session's, then every turn, tool calls paired with their results.
    assert _roles(router)[1:] == _roles(ask)[1:]
    roles = _roles(ask)
    assert roles[0][0] == "system" and roles[0][1].startswith("You are the ask agent")
    assert roles[1:] == [
        ("system", SESSION_PROMPT),
        ("user", "Create a sorting function"),
        ("assistant", "write_file"),
        ("tool", roles[4][1]),
        ("assistant", "I wrote sort.py. Done."),
        ("user", "What is a closure?"),
    ]
    call = ask.body["messages"][3]["tool_calls"][0]
    assert ask.body["messages"][4]["tool_call_id"] == call["id"]
    assert "sort.py" in call["function"]["arguments"]


async def test_the_transcript_is_read_back_in_pages(http: httpx.AsyncClient) -> None:
    await http.post("/v1/sessions", json={"session_id": "conv-pages", "system_prompt": "Hi."})
    await Conversation(http).send(
        "conv-pages", "Create a sorting function", decide={"decision": "APPROVE"}
    )
    whole = (await http.get("/v1/sessions/conv-pages", params={"limit": 1000})).json()
    roles = [m["role"] for m in whole["messages"]]
    assert roles == ["system", "user", "handoff", "assistant", "tool", "assistant"]
    assert whole["total"] == 6 and whole["next_offset"] is None
    handoff = whole["messages"][2]
    assert handoff["agent"] == "coder" and handoff["meta"]["from"] == "orchestrator"
    call = whole["messages"][3]["tool_calls"][0]
    assert call["name"] == "write_file"
    assert whole["messages"][4]["tool_call_id"] == call["id"]
    assert whole["messages"][4]["meta"] == {"outcome": "completed", "decision": "APPROVE"}
    page = (await http.get("/v1/sessions/conv-pages", params={"offset": 2, "limit": 3})).json()
    assert page["messages"] == whole["messages"][2:5]
    assert (page["offset"], page["total"], page["next_offset"]) == (2, 6, 5)


async def test_a_decision_after_the_client_left_resumes_the_run_to_its_end(
    http: httpx.AsyncClient,
    running: RunningServer,
    model_server: ChatServer,
    telemetered: Telemetered,
) -> None:
    approval = await _until_approval(http, "conv-gone", "Create a sorting function")
    await _wait_released(running, approval["call_id"])
    model_server.requests.clear()

    decided = await http.post(f"/v1/approvals/{approval['call_id']}", json={"decision": "APPROVE"})
    assert decided.status_code == 200, decided.text
    answer = decided.json()
    assert answer["resumed"] == "here"
    assert answer["outcome"] == "completed"
    assert answer["text"] == "I wrote sort.py. Done."
    assert answer["result"]["outcome"] == "completed"
    assert answer["trace_id"] != answer["waiting_trace_id"]
    # The model was called once more, with the tool's result, and answered.
    (after,) = model_server.requests
    assert _roles(after)[-1][0] == "tool"
    session = (await http.get("/v1/sessions/conv-gone")).json()
    assert session["messages"][-1]["content"] == "I wrote sort.py. Done."
    assert session["agent"] == "coder"
    # The resumed run is a trace of its own, linked to the span that waited.
    resumed = [s for s in telemetered.spans() if f"{s.context.trace_id:032x}" == answer["trace_id"]]
    names = {s.name for s in resumed}
    assert {n.SPAN_AGENT_REQUEST, "invoke_agent coder", "execute_tool write_file"} <= names
    assert "chat test-model" in names
    request = next(s for s in resumed if s.name == n.SPAN_AGENT_REQUEST)
    waiting = next(
        s
        for s in telemetered.spans()
        if s.name == "execute_tool write_file"
        and f"{s.context.trace_id:032x}" == answer["waiting_trace_id"]
    )
    assert [link.context.span_id for link in request.links] == [waiting.context.span_id]
    assert waiting.attributes[n.TOOL_OUTCOME] == n.OUTCOME_DISCONNECTED


async def test_a_resumed_run_streams_its_events_when_asked(
    http: httpx.AsyncClient, running: RunningServer
) -> None:
    approval = await _until_approval(http, "conv-sse", "Create a sorting function")
    await _wait_released(running, approval["call_id"])
    async with http.stream(
        "POST",
        f"/v1/approvals/{approval['call_id']}",
        json={"decision": "APPROVE"},
        headers={"Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [event async for event in sse_events(response)]
    names = [e.event for e in events]
    assert names[0] == "meta" and names[-1] == "done"
    assert events[0].data["resumed"] == "here"
    assert events[0].data["call_id"] == approval["call_id"]
    assert "tool_result" in names and "text" in names
    assert events[-1].data["outcome"] == "completed"


async def test_a_run_survives_a_restart_between_the_approval_and_the_decision(
    telemetered: Telemetered, openai_settings: Callable[..., Settings]
) -> None:
    settings = openai_settings()
    with serve(create_app(settings)) as first:
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
            approval = await _until_approval(client, "conv-restart", "Create a sorting function")
    with serve(create_app(settings)) as second:
        async with httpx.AsyncClient(base_url=second.url, timeout=30) as client:
            pending = (await client.get("/v1/approvals")).json()
            assert [p["call_id"] for p in pending] == [approval["call_id"]]
            decided = await client.post(
                f"/v1/approvals/{approval['call_id']}", json={"decision": "APPROVE"}
            )
            session = (await client.get("/v1/sessions/conv-restart")).json()
    assert decided.status_code == 200, decided.text
    assert decided.json()["resumed"] == "here"
    assert decided.json()["text"] == "I wrote sort.py. Done."
    assert session["messages"][-1]["content"] == "I wrote sort.py. Done."
    assert (Path(settings.data_dir) / "workspaces" / "conv-restart" / "sort.py").exists()


async def test_two_racing_decisions_resume_the_run_once(
    http: httpx.AsyncClient, running: RunningServer
) -> None:
    approval = await _until_approval(http, "conv-race", "Create a sorting function")
    await _wait_released(running, approval["call_id"])
    url = f"/v1/approvals/{approval['call_id']}"
    answers = await asyncio.gather(
        *(http.post(url, json={"decision": d}) for d in ["APPROVE", "REJECT"] * 4)
    )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7
    session = (await http.get("/v1/sessions/conv-race", params={"limit": 1000})).json()
    results = [m for m in session["messages"] if m["tool_call_id"] == approval["call_id"]]
    assert len(results) == 1
    finals = [m for m in session["messages"] if m["role"] == "assistant" and m["content"]]
    assert len(finals) == 1


async def test_a_new_message_waits_for_the_pending_approval(
    http: httpx.AsyncClient, running: RunningServer
) -> None:
    approval = await _until_approval(http, "conv-wait", "Create a sorting function")
    await _wait_released(running, approval["call_id"])
    refused = await http.post(
        "/agent/message/stream", json={"session_id": "conv-wait", "message": "hello?"}
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "approval_pending"
    assert approval["call_id"] in refused.json()["error"]["message"]
    decided = await http.post(f"/v1/approvals/{approval['call_id']}", json={"decision": "REJECT"})
    assert decided.json()["outcome"] == "rejected"
    assert "rejected" in decided.json()["text"]
    after = Conversation(http)
    await after.send("conv-wait", "What is a closure?")
    assert after.of("done")[0]["outcome"] == "completed"


async def test_one_run_per_session_at_a_time(http: httpx.AsyncClient) -> None:
    async with http.stream(
        "POST",
        "/agent/message/stream",
        json={"session_id": "conv-busy", "message": "Create a sorting function"},
    ) as response:
        async for event in sse_events(response):
            if event.event == "agent_switched":
                busy = await http.post(
                    "/agent/message/stream",
                    json={"session_id": "conv-busy", "message": "What is a closure?"},
                )
                assert busy.status_code == 409
                assert busy.json()["error"]["code"] in ("session_busy", "approval_pending")
            if event.event == "approval_required":
                await http.post(
                    f"/v1/approvals/{event.data['call_id']}", json={"decision": "APPROVE"}
                )
    other = Conversation(http)
    await other.send("conv-busy", "What is a closure?")
    assert other.of("done")[0]["outcome"] == "completed"


async def test_a_deleted_sessions_transcript_is_gone(http: httpx.AsyncClient) -> None:
    await Conversation(http).send("conv-del", "What is a closure?")
    assert (await http.get("/v1/sessions/conv-del")).status_code == 200
    assert (await http.delete("/v1/sessions/conv-del")).status_code == 200
    gone = await http.get("/v1/sessions/conv-del")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "session_not_found"
    again = await http.post(
        "/agent/message/stream", json={"session_id": "conv-del", "message": "still there?"}
    )
    assert again.status_code == 404


async def test_an_approval_nobody_answers_times_out_and_the_agent_says_so(
    telemetered: Telemetered, openai_settings: Callable[..., Settings]
) -> None:
    settings = openai_settings(approval_timeout_s=0.5, sweep_interval_s=0.1)
    with serve(create_app(settings)) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
            approval = await _until_approval(client, "conv-late", "Create a sorting function")
            deadline = time.monotonic() + 15
            while True:
                session = (await client.get("/v1/sessions/conv-late")).json()
                last = session["messages"][-1]
                if last["role"] == "assistant" and last["content"]:
                    break
                assert time.monotonic() < deadline, "the timed-out run was never resumed"
                await asyncio.sleep(0.05)
            late = await client.post(
                f"/v1/approvals/{approval['call_id']}", json={"decision": "APPROVE"}
            )
            audit = (
                await client.get("/v1/audit", params={"event_type": "hitl_decision_made"})
            ).json()
    assert "rejected" in last["content"]
    assert late.status_code == 409
    (record,) = audit
    assert record["decision"] == "REJECT" and record["outcome"] == "timeout"


async def test_a_three_turn_coding_conversation_survives_a_restart_mid_approval(
    telemetered: Telemetered, openai_settings: Callable[..., Settings], model_server: ChatServer
) -> None:
    """Create → (restart while the tests' write waits) → "Now add tests for it" → recap."""
    settings = openai_settings()
    with serve(create_app(settings)) as first:
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
            turn_1 = Conversation(client)
            await turn_1.send("conv-3", "Create a sorting function", decide={"decision": "APPROVE"})
            assert turn_1.of("done")[0]["outcome"] == "completed"
            approval = await _until_approval(client, "conv-3", "Now add tests for it")
    assert approval["tool"] == "write_file"
    assert approval["arguments"]["path"] == "test_sort.py"
    assert "from sort import sort_numbers" in approval["arguments"]["content"]
    with serve(create_app(settings)) as second:
        async with httpx.AsyncClient(base_url=second.url, timeout=30) as client:
            decided = await client.post(
                f"/v1/approvals/{approval['call_id']}", json={"decision": "APPROVE"}
            )
            assert decided.status_code == 200, decided.text
            assert decided.json()["resumed"] == "here"
            assert decided.json()["text"] == "I wrote test_sort.py. Done."
            model_server.requests.clear()
            turn_3 = Conversation(client)
            await turn_3.send("conv-3", "What did you just do?")
    recap = "".join(e["delta"] for e in turn_3.of("text"))
    assert "sort.py" in recap and "test_sort.py" in recap
    # The recap's model call carried all three turns.
    ask = model_server.requests[-1]
    users = [m["content"] for m in ask.body["messages"] if m["role"] == "user"]
    assert users == ["Create a sorting function", "Now add tests for it", "What did you just do?"]
    workspace = Path(settings.data_dir) / "workspaces" / "conv-3"
    assert (workspace / "sort.py").exists() and (workspace / "test_sort.py").exists()


async def test_a_small_context_budget_leaves_the_oldest_turns_out(
    telemetered: Telemetered, openai_settings: Callable[..., Settings], model_server: ChatServer
) -> None:
    settings = openai_settings(context_max_tokens=300)
    with serve(create_app(settings)) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
            await client.post(
                "/v1/sessions", json={"session_id": "conv-budget", "system_prompt": SESSION_PROMPT}
            )
            for question in [
                "What is a closure?",
                "What is a generator?",
                "What is a decorator?",
                "What is a coroutine?",
                "What is a descriptor?",
            ]:
                await Conversation(client).send("conv-budget", question)
            model_server.requests.clear()
            await Conversation(client).send("conv-budget", "What is a context manager?")
            metrics = (await client.get("/v1/metrics")).json()
    ask = model_server.requests[-1]
    messages = ask.body["messages"]
    assert messages[0]["content"].startswith("You are the ask agent")
    assert messages[1] == {"role": "system", "content": SESSION_PROMPT}
    assert messages[-1] == {"role": "user", "content": "What is a context manager?"}
    users = [m["content"] for m in messages if m["role"] == "user"]
    assert "What is a closure?" not in users  # the oldest turn went first
    assert len(json.dumps(messages)) // 4 <= 300
    trims = [
        e
        for s in telemetered.spans()
        if s.name == "chat test-model"
        for e in s.events
        if e.name == n.EVENT_CONTEXT_TRIMMED
    ]
    assert trims and all((e.attributes or {})[n.CONTEXT_DROPPED_MESSAGES] > 0 for e in trims)
    assert metrics["context_trims"]["ask"]["messages"] > 0
    assert telemetered.metric(n.METRIC_CONTEXT_TRIMMED, {n.GEN_AI_AGENT_NAME: "ask"}) > 0


AGENTS_FILE = """
[agents.orchestrator]
description = "Route the user's message; answer with JSON {agent, confidence, reason}."
model = "router-mini"

[agents.coder]
description = "Write code."
tools = ["read_file", "write_file"]
model = "coder-large"

[agents.ask]
description = "Answer questions."
"""


async def test_agents_come_from_the_agents_file_with_their_own_models(
    telemetered: Telemetered,
    openai_settings: Callable[..., Settings],
    model_server: ChatServer,
    tmp_path: Path,
) -> None:
    agents_file = tmp_path / "agents.toml"
    agents_file.write_text(AGENTS_FILE)
    with serve(create_app(openai_settings(agents_file=agents_file))) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
            done = Conversation(client)
            await done.send(
                "conv-file", "Create a sorting function", decide={"decision": "APPROVE"}
            )
            refused = await client.post(
                "/agent/message/stream",
                json={"session_id": "conv-file", "message": "hi", "agent": "debug"},
            )
    assert done.of("done")[0]["outcome"] == "completed"
    assert [r.body["model"] for r in model_server.requests] == [
        "router-mini",
        "coder-large",
        "coder-large",
    ]
    offered = {t["function"]["name"] for t in model_server.requests[1].body["tools"]}
    assert offered == {"read_file", "write_file"}
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "unknown_agent"
    assert {s.name for s in telemetered.spans()} >= {"chat router-mini", "chat coder-large"}


async def test_an_agents_file_naming_an_unknown_tool_fails_at_start_up(
    telemetered: Telemetered, openai_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    agents_file = tmp_path / "agents.toml"
    agents_file.write_text(AGENTS_FILE.replace('"write_file"]', '"write_fiel"]'))
    settings = openai_settings(agents_file=agents_file)
    message = rf"agents file {agents_file}: agents\.coder\.tools: .*'write_fiel'"
    with pytest.raises(AgentsFileError, match=message):
        check_configuration(settings)
    with pytest.raises(AgentsFileError, match=message):
        await Runtime.start(settings)
