"""One request's spans, owned by one idempotent finaliser.

Every span a request opens is registered here, and :meth:`RequestTrace.finish` ends
whatever is still open, innermost first, then the request span: on a normal end, an
exception, a client disconnect or a shutdown alike. Each span ends exactly once because
``stop`` and ``fail`` are idempotent and ``finish`` runs its work only once. Finishing also
commits the request's queued audit records (one transaction for the request).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context

from telemetry.span_ref import SpanRef
from telemetry.spans import AgentRun, RequestSpan, SpanFactory, ToolRun


class RequestTrace:
    """The ``agent.request`` span and every agent/tool span opened under it."""

    def __init__(
        self,
        factory: SpanFactory,
        session_id: str,
        *,
        context: Context | None = None,
        links: Sequence[SpanRef] = (),
    ) -> None:
        """``links``: spans this request continues (see :meth:`SpanFactory.request`)."""
        self._factory = factory
        self.session_id = session_id
        self.request: RequestSpan = factory.request(session_id, context=context, links=links)
        self._open: list[AgentRun | ToolRun] = []

    @property
    def correlation_id(self) -> str:
        return self.request.correlation_id

    @property
    def finished(self) -> bool:
        return self.request.ended

    def agent(self, agent: str) -> AgentRun:
        run = self._factory.agent(
            agent, conversation_id=self.session_id, parent=self.request.context
        )
        self._open.append(run)
        return run

    def tool(self, tool: str, call_id: str, *, run: AgentRun) -> ToolRun:
        tool_run = self._factory.tool(
            tool, call_id, agent=run.agent, parent=run.context, session_id=self.session_id
        )
        self._open.append(tool_run)
        return tool_run

    def handoff(self, run: AgentRun, to_agent: str, call_id: str) -> ToolRun:
        tool_run = self._factory.handoff(
            run.agent, to_agent, call_id, parent=run.context, session_id=self.session_id
        )
        self._open.append(tool_run)
        return tool_run

    def finish(self, outcome: str, error: BaseException | None = None) -> None:
        """End every open span (innermost first), then the request span. Idempotent."""
        if self.request.ended:
            return
        for span in reversed(self._open):
            if span.ended:
                continue
            if error is not None:
                span.fail(error)
            else:
                span.stop(outcome)
        self._open.clear()
        if error is not None:
            self.request.fail(error)
        else:
            self.request.stop(outcome)
        # The request's audit records are committed together, now, on this thread.
        self._factory.emitter.commit_audit()
