"""The offline demo: one conversation of five turns (the seed's Example 2, a follow-up that
needs the conversation's memory, a handoff, a rejected command, a recap), with timelines.

Runs the real orchestrator with the scripted model, a SQLite store in a temporary folder
and the real telemetry pipeline; approvals are decided by a scripted "human" as soon as
they are asked for. With a Collector listening on the OTLP endpoint the same traces reach
it; without one, the demo says so in one line and keeps everything local.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.console import Console
from rich.table import Table

import telemetry
from agent_runtime.api.app import service_version
from agent_runtime.hitl import Decision
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings


@dataclass(frozen=True, slots=True)
class Story:
    title: str
    session_id: str
    message: str
    decision: Decision
    arguments: dict[str, Any] | None = None
    feedback: str | None = None


STORIES = (
    Story(
        "Example 2: orchestrator → coder, APPROVE", "demo", "Create a sorting function", "APPROVE"
    ),
    Story(
        "the conversation remembers: coder tests the file it wrote, APPROVE",
        "demo",
        "Now add tests for it",
        "APPROVE",
    ),
    Story(
        "debug → coder handoff, EDIT",
        "demo",
        "Fix the bug in sort.py",
        "EDIT",
        {"path": "sort.py", "content": "def sort_items(items):\n    return sorted(items)\n"},
    ),
    Story(
        "coder runs the tests, REJECT",
        "demo",
        "Add a test runner script and run the tests",
        "REJECT",
        feedback="not on this machine",
    ),
    Story("ask answers from the transcript", "demo", "What did you just do?", "APPROVE"),
)


def collector_reachable(
    settings: telemetry.TelemetrySettings, timeout_s: float = 0.3
) -> tuple[bool, str]:
    """Is something listening on the OTLP endpoint? (a TCP connect, nothing sent)"""
    endpoint = settings.otlp_endpoint or "http://localhost:4317"
    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    host, port = parsed.hostname or "localhost", parsed.port or 4317
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, endpoint
    except OSError:
        return False, endpoint


async def _run_story(runtime: Runtime, story: Story, console: Console) -> str:
    trace_id = ""
    answer: list[str] = []
    async for event in runtime.orchestrator.handle(story.session_id, story.message):
        if event.event == "meta":
            trace_id = event.data["correlation_id"]
        elif event.event == "text":
            answer.append(event.data["delta"])
        elif event.event in ("tool_call", "agent_switched"):
            answer.clear()
        elif event.event == "approval_required":
            console.print(
                f"  [yellow]approval required[/] {event.data['tool']} → human says "
                f"[bold]{story.decision}[/]"
            )
            await runtime.decide(
                event.data["call_id"],
                story.decision,
                arguments=story.arguments,
                feedback=story.feedback,
            )
        elif event.event == "done":
            console.print(f"  [bold]{event.data['agent']}[/]: {''.join(answer).strip()}")
            console.print(f"  done: agent={event.data['agent']} outcome={event.data['outcome']}")
    return trace_id


def print_timeline(console: Console, trace_id: str, entries: list[telemetry.TimelineEntry]) -> None:
    table = Table(title=f"trace {trace_id}", title_justify="left", show_lines=False)
    table.add_column("T+ms", justify="right", style="cyan")
    table.add_column("event", style="bold")
    table.add_column("details")
    for entry in entries:
        table.add_row(f"{entry.offset_ms:.1f}", entry.event, entry.details)
    console.print(table)


def print_metrics(console: Console, metrics: dict[str, Any]) -> None:
    table = Table(title="get_metrics()", title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value")
    for section, value in metrics.items():
        table.add_row(section, str(value))
    console.print(table)


async def run_demo(console: Console | None = None) -> int:
    console = console or Console()
    telemetry_settings = telemetry.TelemetrySettings.from_env()
    reachable, endpoint = collector_reachable(telemetry_settings)
    if reachable:
        console.print(f"Collector at {endpoint}: the demo's traces, metrics and audit go there.")
    else:
        console.print(f"No Collector at {endpoint}; telemetry stays in this process.")
        telemetry_settings = replace(
            telemetry_settings,
            traces_exporters=_without_otlp(telemetry_settings.traces_exporters),
            metrics_exporters=_without_otlp(telemetry_settings.metrics_exporters),
            logs_exporters=_without_otlp(telemetry_settings.logs_exporters),
        )
    providers = telemetry.configure(settings=telemetry_settings, service_version=service_version())
    with tempfile.TemporaryDirectory(prefix="agent-runtime-demo-") as data_dir:
        settings = Settings(data_dir=Path(data_dir), llm_provider="scripted")
        runtime = await Runtime.start(settings, telemetry_providers=providers)
        try:
            for story in STORIES:
                console.rule(f"{story.title}: {story.message!r}")
                trace_id = await _run_story(runtime, story, console)
                print_timeline(console, trace_id, runtime.telemetry.timeline(trace_id) or [])
            print_metrics(console, runtime.telemetry.metrics.get_metrics())
        finally:
            await runtime.close()
    telemetry.shutdown(providers)
    return 0


def _without_otlp(exporters: tuple[str, ...]) -> tuple[str, ...]:
    """No Collector listens: exporting there would only log connection errors."""
    return tuple(name for name in exporters if name != "otlp")


def main() -> int:
    return asyncio.run(run_demo())
