"""Finished spans as one text tree, so that a test compares a whole trace with one literal
that reads like the seed's timeline: each span under its parent, in the order it started,
its span events between its children at the moment they happened.

::

    POST /agent/message/stream
    └─ agent.request  outcome=completed
       ├─ · session.message_added  role=user
       ├─ invoke_agent orchestrator  outcome=handed_off
       │  ├─ chat scripted
       │  └─ · agent.switched  from=orchestrator to=coder trigger=orchestrator confidence=0.9

A span's line carries its outcome attributes, ``ERROR <error.type>`` when its status is
ERROR, and its links (``→ linked to <span name>`` when the target is among the spans given).
An event's line carries its attributes under their last name segment, without the values
that change from run to run (ids, timings, stack traces). Only ``agent_runtime`` spans and
the service's server spans are drawn: the database client spans of the store are left out
(they depend on the backend, not on the flow).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import StatusCode

from telemetry import names as n

SPAN_ATTRIBUTES: tuple[str, ...] = (
    n.REQUEST_OUTCOME,
    n.AGENT_OUTCOME,
    n.TOOL_OUTCOME,
    n.GEN_AI_HANDOFF_FROM_AGENT,
    n.GEN_AI_HANDOFF_TO_AGENT,
)
"""The span attributes a tree line shows: how the span ended, and a handoff's two ends."""

VOLATILE_EVENT_ATTRIBUTES: frozenset[str] = frozenset(
    {
        n.GEN_AI_TOOL_CALL_ID,
        n.HITL_WAIT_MS,
        n.EXCEPTION_STACKTRACE,
        n.EXCEPTION_MESSAGE,
        n.ERROR_MESSAGE,
        f"{n.HITL_FEEDBACK}_sha256",
    }
)
"""Event attributes left out of a line: they differ between two runs of the same flow."""

_SHORT_NAMES = {
    n.GEN_AI_TOOL_NAME: "tool",
    n.GEN_AI_AGENT_NAME: "agent",
    n.SESSION_ID: "session",
    n.ERROR_TYPE: "error.type",
    "exception.type": "exception.type",
}
_SCOPES = frozenset({n.SCOPE, "opentelemetry.instrumentation.fastapi"})


@dataclass(frozen=True)
class _Node:
    time: int
    span: ReadableSpan | None = None
    event: Event | None = None


def trace_ids(spans: Iterable[ReadableSpan]) -> list[str]:
    """The traces of ``spans`` (32 hex), in the order their first span started."""
    seen: dict[str, int] = {}
    for span in sorted(spans, key=_start):
        seen.setdefault(_trace_id(span), 0)
    return list(seen)


def render(spans: Sequence[ReadableSpan], trace_id: str) -> str:
    """The tree of one trace; other traces' spans are only named as link targets."""
    names = {s.context.span_id: s.name for s in spans if s.context is not None}
    drawn = [s for s in spans if _trace_id(s) == trace_id and _drawn(s)]
    ids = {s.context.span_id for s in drawn if s.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in drawn:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(span)
    lines: list[str] = []
    for root in sorted(children.get(None, []), key=_start):
        lines.append(_span_line(root, names))
        _draw_children(root, children, names, "", lines)
    return "\n".join(lines)


def _draw_children(
    span: ReadableSpan,
    children: Mapping[int | None, list[ReadableSpan]],
    names: Mapping[int, str],
    indent: str,
    lines: list[str],
) -> None:
    span_id = span.context.span_id if span.context is not None else None
    nodes = [_Node(_start(child), span=child) for child in children.get(span_id, [])]
    nodes += [_Node(event.timestamp, event=event) for event in span.events]
    nodes.sort(key=lambda node: node.time)
    for index, node in enumerate(nodes):
        last = index == len(nodes) - 1
        branch, below = ("└─ ", "   ") if last else ("├─ ", "│  ")
        if node.event is not None:
            lines.append(f"{indent}{branch}{_event_line(node.event)}")
        elif node.span is not None:
            lines.append(f"{indent}{branch}{_span_line(node.span, names)}")
            _draw_children(node.span, children, names, indent + below, lines)


def _span_line(span: ReadableSpan, names: Mapping[int, str]) -> str:
    attributes = span.attributes or {}
    parts = [span.name]
    shown = [f"{_short(k)}={_value(attributes[k])}" for k in SPAN_ATTRIBUTES if k in attributes]
    if span.status.status_code is StatusCode.ERROR:
        shown.append(f"ERROR {attributes.get(n.ERROR_TYPE, '?')}")
    for link in span.links:
        target = names.get(link.context.span_id, "a span not given")
        shown.append(f"→ linked to {target}")
    if shown:
        parts.append("  " + " ".join(shown))
    return "".join(parts)


def _event_line(event: Event) -> str:
    attributes = event.attributes or {}
    shown = [
        f"{_short(key)}={_value(value)}"
        for key, value in attributes.items()
        if key not in VOLATILE_EVENT_ATTRIBUTES
    ]
    return f"· {event.name}" + (f"  {' '.join(shown)}" if shown else "")


def _short(key: str) -> str:
    return _SHORT_NAMES.get(key, key.rsplit(".", 1)[-1])


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    text = str(value)
    return f'"{text}"' if " " in text else text


def _drawn(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name in _SCOPES


def _start(span: ReadableSpan) -> int:
    return span.start_time or 0


def _trace_id(span: ReadableSpan) -> str:
    return f"{span.context.trace_id:032x}" if span.context is not None else ""
