"""MultiAgentOrchestrator: routes a user message to an agent and runs it to the end, and
resumes a run that paused for a human.

A user message is one request and one trace: :meth:`MultiAgentOrchestrator.begin` checks
that the session can take it (it is not deleted, no run of it is in progress, none waits
for a human), then the returned :class:`Run` yields the stream's events (the SSE events of
the HTTP contract): ``meta`` first, ``done`` last. Switches come in three kinds: the user's
explicit choice, the orchestrator agent's routing, and an agent's own handoff
(``transfer_to_<agent>``). A run that paused for a human and lost its stream (client gone,
process restarted) is resumed by :meth:`MultiAgentOrchestrator.resume` in the trace of
whoever resumes it, linked to the span that waited, from the stored transcript. Every span a
request opens is ended exactly once by its :class:`~telemetry.RequestTrace`, whatever way
the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from agent_runtime.agent_loop import AgentLoop, PendingCall, RunState
from agent_runtime.agents import AgentCatalog
from agent_runtime.errors import ApprovalPending, SessionBusy, StoreUnavailable, UnknownAgent
from agent_runtime.feedback import FeedbackService
from agent_runtime.hitl import (
    ApprovalsClosed,
    HITLManager,
    Resolution,
    ResumedElsewhere,
    waiting_span,
)
from agent_runtime.llm import ToolCall
from agent_runtime.llm.stream import ContextWindow, LLMStreamService
from agent_runtime.sessions import RunLease, SessionManager
from agent_runtime.store import ApprovalRecord
from agent_runtime.stream_events import StreamEvent, error_event
from agent_runtime.toolrunner import ToolRunner
from agent_runtime.transcript import to_chat_messages, tool_call_dicts, unanswered_calls
from telemetry import EventSink, RequestTrace, SpanFactory, SpanRef
from telemetry import names as n

_log = logging.getLogger(__name__)
_RESUME_WAIT_STEP_S = 0.2


@dataclass(frozen=True, slots=True)
class Route:
    agent: str
    confidence: float
    reason: str


def parse_route(text: str, routable: tuple[str, ...], fallback: str) -> Route:
    """The orchestrator model's JSON answer; anything unusable routes to ``fallback``."""
    try:
        data = json.loads(text)
        agent = str(data["agent"])
        confidence = min(1.0, max(0.0, float(data.get("confidence", 0.5))))
        reason = str(data.get("reason", ""))[:256]
    except (ValueError, KeyError, TypeError):
        return Route(fallback, 0.5, "the routing answer was not understood")
    if agent not in routable:
        return Route(fallback, 0.5, f"unknown agent {agent!r} proposed")
    return Route(agent, confidence, reason)


class Run:
    """One request's event stream; iterate it once. It holds the session's run lease from
    :meth:`MultiAgentOrchestrator.begin` until the stream ends.

    A consumer that stops early (a client gone) must :meth:`aclose` it, as
    ``contextlib.aclosing`` does: that ends its spans (``disconnected``), stops its wait
    for a human (the approval stays pending) and gives the lease back at once rather than
    whenever the garbage collector finalises it.
    """

    def __init__(self, events: AsyncGenerator[StreamEvent, None]) -> None:
        self._events = events

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._events

    async def aclose(self) -> None:
        await self._events.aclose()


class MultiAgentOrchestrator:
    """Runs conversations across agents; the one entry point of the domain."""

    def __init__(
        self,
        *,
        agents: AgentCatalog,
        sessions: SessionManager,
        hitl: HITLManager,
        tools: ToolRunner,
        llm: LLMStreamService,
        events: EventSink,
        spans: SpanFactory,
        context_max_tokens: int = 100_000,
        resume_wait_s: float = 30.0,
        feedback: FeedbackService | None = None,
    ) -> None:
        """``context_max_tokens``: the most a model call's input may hold;
        ``resume_wait_s``: how long a resumed run waits for its session's run lease (a
        process that died holding it loses it when it expires); ``feedback``: where each
        request is remembered when it ends, so its answer can be rated (None: nowhere)."""
        self._agents = agents
        self._router = agents.router.name
        self._context_max_tokens = context_max_tokens
        self._sessions = sessions
        self._hitl = hitl
        self._llm = llm
        self._spans = spans
        self._resume_wait_s = resume_wait_s
        self._feedback = feedback
        self._finishing: set[asyncio.Task[None]] = set()
        self._loop = AgentLoop(
            agents=agents, sessions=sessions, tools=tools, llm=llm, events=events
        )

    @property
    def agents(self) -> AgentCatalog:
        return self._agents

    async def begin(self, session_id: str, message: str, agent: str | None = None) -> Run:
        """Accept one user message for ``session_id`` (created when unknown); ``agent``: the
        user's explicit choice among the routable agents.

        Raises before anything is streamed: ``UnknownAgent``, ``SessionNotFound``
        (deleted), ``ApprovalPending`` (its last run waits for a human), ``SessionBusy`` (a
        run of it is in progress).
        """
        if agent is not None and agent not in self._agents.routable:
            raise UnknownAgent.among(agent, self._agents.routable)
        await self._sessions.get_or_create(session_id)
        waiting = await self._hitl.pending(session_id)
        if waiting:
            raise ApprovalPending.for_call(session_id, waiting[0].call_id)
        lease = await self._sessions.begin_run(session_id)
        return Run(self._message_events(lease, session_id, message, agent))

    async def handle(
        self, session_id: str, message: str, agent: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """:meth:`begin` and its events in one call, for callers without a status to send."""
        async with contextlib.aclosing(await self.begin(session_id, message, agent)) as run:
            async for event in run:
                yield event

    async def resume(self, record: ApprovalRecord, resolution: Resolution) -> Run:
        """Resume the paused run of a decided call (the caller won its resume claim), in
        the current trace, linked to the span that waited; ``meta`` first, ``done`` last."""
        lease = await self._lease_for_resume(record.session_id)
        return Run(self._resumed_events(lease, record, resolution))

    async def resume_expired(self, record: ApprovalRecord) -> Run | None:
        """Time out a paused approval past its deadline and resume its run (the agent hears
        that the approval timed out); None when someone decided it first."""
        request = RequestTrace(self._spans, record.session_id, links=[waiting_span(record)])
        with request.request.activate():
            resolution = await self._hitl.expire(record)
            claimed = resolution is not None and await self._hitl.claim_resume(record.call_id)
        if resolution is None or not claimed:
            request.finish(n.OUTCOME_COMPLETED)
            return None
        lease = await self._lease_for_resume(record.session_id)
        return Run(self._resumed_events(lease, record, resolution, request=request))

    def shutdown(self) -> None:
        """Stop waiting streams (their approvals stay pending) so the server can exit."""
        self._hitl.close()

    async def finished(self) -> None:
        """Wait for the finalisers still running (the streams' spans ended, their leases
        given back), so that the store closes after them."""
        await asyncio.gather(*self._finishing, return_exceptions=True)

    async def _lease_for_resume(self, session_id: str) -> RunLease:
        deadline = time.monotonic() + self._resume_wait_s
        while True:
            try:
                return await self._sessions.begin_run(session_id)
            except SessionBusy:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(_RESUME_WAIT_STEP_S)

    async def _message_events(
        self, lease: RunLease, session_id: str, message: str, agent: str | None
    ) -> AsyncGenerator[StreamEvent, None]:
        request = RequestTrace(self._spans, session_id)
        state = RunState(request, session_id, agent or self._router, self._window())
        meta = {"correlation_id": request.correlation_id, "session_id": session_id}
        body = self._message_body(state, message, agent)
        async with contextlib.aclosing(self._framed(state, lease, meta, body)) as events:
            async for event in events:  # closed with this stream: its finaliser runs now
                yield event

    async def _message_body(
        self, state: RunState, message: str, agent: str | None
    ) -> AsyncGenerator[StreamEvent, None]:
        session = await self._sessions.get(state.session_id)
        state.transcript = await self._sessions.messages(state.session_id)
        await self._loop.append(state, "user", message)
        if agent is not None:
            yield await self._loop.switch(
                state,
                from_agent=session.agent or self._router,
                to_agent=agent,
                trigger="user",
                reason="the user chose the agent",
                confidence=1.0,
            )
        else:
            async for event in self._route(state):
                yield event
        async for event in self._loop.run(state):
            yield event

    async def _resumed_events(
        self,
        lease: RunLease,
        record: ApprovalRecord,
        resolution: Resolution,
        *,
        request: RequestTrace | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        if request is None:
            request = RequestTrace(self._spans, record.session_id, links=[waiting_span(record)])
        state = RunState(request, record.session_id, record.agent, self._window())
        meta = {
            "correlation_id": request.correlation_id,
            "session_id": record.session_id,
            "call_id": record.call_id,
            "resumed": "here",
        }
        body = self._resumed_body(state, record, resolution)
        async with contextlib.aclosing(self._framed(state, lease, meta, body)) as events:
            async for event in events:
                yield event

    async def _resumed_body(
        self, state: RunState, record: ApprovalRecord, resolution: Resolution
    ) -> AsyncGenerator[StreamEvent, None]:
        state.transcript = await self._sessions.messages(record.session_id)
        pending = await self._pending_calls(state, record, resolution)
        async for event in self._loop.run(state, pending):
            yield event

    async def _framed(
        self,
        state: RunState,
        lease: RunLease,
        meta: dict[str, str],
        body: AsyncGenerator[StreamEvent, None],
    ) -> AsyncGenerator[StreamEvent, None]:
        """Every stream's frame, a new message's or a resumed run's: ``meta`` first, the
        body's events, a failure as an ``error`` event, the one finaliser on every path
        (the client gone included), ``done`` last."""
        started = time.monotonic()
        outcome: str = n.OUTCOME_DISCONNECTED
        error: BaseException | None = None
        try:
            yield StreamEvent("meta", meta)
            async with contextlib.aclosing(body):
                async for event in body:
                    yield event
            outcome = state.outcome
            await self._keep_agent(state)  # a store that fails here fails the stream
        except ApprovalsClosed as exc:
            outcome = _closed_outcome(exc)
            yield StreamEvent("error", {"code": exc.code, "message": str(exc)})
        except Exception as exc:  # a real failure: the spans say ERROR
            error, outcome = exc, n.OUTCOME_ERROR
            yield error_event(exc)
        finally:
            await self._end(state, lease, outcome, error)
        yield _done(state, started, outcome)

    async def _pending_calls(
        self, state: RunState, record: ApprovalRecord, resolution: Resolution
    ) -> list[PendingCall]:
        """The paused run's calls still to run, the decided one first with its decision.
        An approval whose call is not in the transcript (stored by a release that kept no
        tool calls there) gets its assistant entry written now, so the run can go on."""
        pending = unanswered_calls(state.transcript)
        ids = [call.id for call in pending]
        if record.call_id not in ids:
            call = ToolCall(record.call_id, record.tool, dict(record.arguments))
            await self._loop.append(
                state, "assistant", None, agent=record.agent, tool_calls=tool_call_dicts([call])
            )
            pending = (call,)
            ids = [call.id]
        start = ids.index(record.call_id)
        return [
            (call, resolution if call.id == record.call_id else None) for call in pending[start:]
        ]

    def _window(self) -> ContextWindow:
        return ContextWindow(self._context_max_tokens)

    async def _route(self, state: RunState) -> AsyncIterator[StreamEvent]:
        """The orchestrator agent picks who answers, from the whole conversation."""
        run = state.request.agent(self._router)
        turn = await self._llm.complete(
            run, self._agents.router, to_chat_messages(state.transcript), [], state.window
        )
        route = parse_route(turn.text, self._agents.routable, self._agents.fallback)
        yield await self._loop.switch(
            state,
            from_agent=self._router,
            to_agent=route.agent,
            trigger="orchestrator",
            reason=route.reason,
            confidence=route.confidence,
            run=run,
        )
        run.stop(n.OUTCOME_HANDED_OFF)

    async def _end(
        self, state: RunState, lease: RunLease, outcome: str, error: BaseException | None
    ) -> None:
        """:meth:`_finish`, run to its end even when the stream is cancelled (its client went
        away: the server cancels the response's task, and every await of the finaliser
        would be cancelled too, leaving the session's lease held until it expires)."""
        task = asyncio.get_running_loop().create_task(self._finish(state, lease, outcome, error))
        self._finishing.add(task)  # a task nobody references may be collected mid-way
        task.add_done_callback(_finished)
        task.add_done_callback(self._finishing.discard)
        await asyncio.shield(task)

    async def _finish(
        self, state: RunState, lease: RunLease, outcome: str, error: BaseException | None
    ) -> None:
        """The request's one finaliser: the session's agent is kept at a shutdown (a run
        that ended is kept by its stream); every span ends; the request is remembered (its
        answer can be rated); the lease is given back (a paused run holds none)."""
        try:
            if error is None and outcome == n.OUTCOME_SHUTDOWN:
                with contextlib.suppress(StoreUnavailable):  # the store may be going too
                    await self._keep_agent(state)
        finally:
            try:
                state.request.finish(outcome, error)
                await self._remember(state, outcome)
            finally:
                await lease.release()

    async def _keep_agent(self, state: RunState) -> None:
        """The session's agent is the one that spoke last (``session.updated`` on the
        request span, still open)."""
        with state.request.request.activate():
            await self._sessions.set_agent(state.session_id, state.agent)

    async def _remember(self, state: RunState, outcome: str) -> None:
        """Store the request's trace and ``agent.request`` span for feedback on its answer;
        a store that refuses costs only that (the answer cannot be rated), never the run."""
        if self._feedback is None:
            return
        try:
            await self._feedback.served(
                SpanRef.of(state.request),
                session_id=state.session_id,
                agent=state.agent,
                outcome=outcome,
            )
        except Exception:
            _log.warning(
                "request %s not remembered: its answer cannot be rated",
                state.request.correlation_id,
                exc_info=True,
            )


def _done(state: RunState, started: float, outcome: str) -> StreamEvent:
    return StreamEvent(
        "done",
        {
            "agent": state.agent,
            "duration_ms": round((time.monotonic() - started) * 1e3, 1),
            "outcome": outcome,
        },
    )


def _closed_outcome(exc: ApprovalsClosed) -> str:
    """A stream stopped by its process: shut down, or its run taken over by another."""
    return n.OUTCOME_DISCONNECTED if isinstance(exc, ResumedElsewhere) else n.OUTCOME_SHUTDOWN


def _finished(task: asyncio.Task[None]) -> None:
    """A finaliser whose stream was cancelled has nobody to raise to: its failure is logged."""
    if not task.cancelled() and task.exception() is not None:
        _log.error("a request's finaliser failed", exc_info=task.exception())
