"""One request's spans, owned by one idempotent finaliser.

Every span a request opens is opened here and registered, and :meth:`RequestTrace.finish`
ends whatever is still open, innermost first, then the request span: on a normal end, an
exception, a client disconnect or a shutdown alike. Each span ends exactly once because
``stop`` and ``fail`` are idempotent and ``finish`` runs its work only once. Finishing also
commits the request's queued audit records (one transaction for the request).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.trace import Span

from telemetry.span_ref import SpanRef
from telemetry.spans import AgentRun, ChatCall, RequestSpan, SpanFactory, ToolRun


class RequestTrace:
    """The ``agent.request`` span and every agent, model-call and tool span opened under it.

    Usage::

        request = RequestTrace(hub.spans, session_id)
        try:
            run = request.agent("coder")
            call = request.chat(run, "gpt-4o-mini", provider="openai", server_address=None)
            ...
        finally:
            request.finish(outcome, error)   # ends whatever is still open, once
    """

    def __init__(
        self,
        factory: SpanFactory,
        session_id: str,
        *,
        context: Context | None = None,
        links: Sequence[SpanRef] = (),
    ) -> None:
        """``context``: the parent (default: the current span, the server's); ``links``:
        spans this request continues, e.g. the waiting ``execute_tool`` span of a run that
        resumes in the request that decided its approval (all-zero references are skipped)."""
        self._factory = factory
        self.session_id = session_id
        self.request: RequestSpan = factory.request(session_id, context=context, links=links)
        self._open: list[AgentRun | ChatCall | ToolRun] = []

    @property
    def correlation_id(self) -> str:
        return self.request.correlation_id

    @property
    def span(self) -> Span:
        """The ``agent.request`` span (what :meth:`SpanRef.of` reads)."""
        return self.request.span

    @property
    def finished(self) -> bool:
        return self.request.ended

    def agent(self, agent: str) -> AgentRun:
        """``invoke_agent {agent}`` under the request span."""
        run = self._factory.agent(
            agent, conversation_id=self.session_id, parent=self.request.context
        )
        self._open.append(run)
        return run

    def chat(
        self, run: AgentRun, model: str, *, provider: str, server_address: str | None = None
    ) -> ChatCall:
        """``chat {model}``: one model call of ``run``, ended by :meth:`finish` if its stream
        never was (a disconnect, an exception between two chunks)."""
        call = run.chat(model, provider=provider, server_address=server_address)
        self._open.append(call)
        return call

    def tool(self, tool: str, call_id: str, *, run: AgentRun) -> ToolRun:
        """``execute_tool {tool}`` under ``run``."""
        tool_run = self._factory.tool(
            tool, call_id, agent=run.agent, parent=run.context, session_id=self.session_id
        )
        self._open.append(tool_run)
        return tool_run

    def handoff(self, run: AgentRun, to_agent: str, call_id: str) -> ToolRun:
        """``execute_tool transfer_to_{agent}`` under ``run``."""
        tool_run = self._factory.handoff(
            run.agent, to_agent, call_id, parent=run.context, session_id=self.session_id
        )
        self._open.append(tool_run)
        return tool_run

    def finish(self, outcome: str, error: BaseException | None = None) -> None:
        """End every open span (innermost first), then the request span. Idempotent.

        ``outcome`` (a ``names.OUTCOME_*`` value) goes on every span still open; with
        ``error`` they fail instead (status ERROR, ``error.type``). A model call cut short
        has no outcome of its own: it just ends."""
        if self.request.ended:
            return
        for span in reversed(self._open):
            if span.ended:
                continue
            if error is not None:
                span.fail(error)
            elif isinstance(span, ChatCall):
                span.stop()
            else:
                span.stop(outcome)
        self._open.clear()
        if error is not None:
            self.request.fail(error)
        else:
            self.request.stop(outcome)
        # The request's audit records are committed together, now, on this thread.
        self._factory.emitter.commit_audit()
