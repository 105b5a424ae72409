"""``agent-runtime serve | demo | timeline <trace_id>``."""

from __future__ import annotations

import asyncio
import gc
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

app = typer.Typer(add_completion=False, help="agent-runtime: multi-agent backend, OTel-native.")
console = Console()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (PORT, default 8001)")] = None,
) -> None:
    """Start the HTTP service."""
    import uvicorn

    import telemetry
    from agent_runtime.api.app import create_app, service_version
    from agent_runtime.runtime import check_configuration
    from agent_runtime.settings import Settings

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        settings = Settings(**overrides)
        check_configuration(settings)
    except ValueError as exc:  # pydantic's ValidationError, a bad agents file or DATABASE_URL
        console.print(f"[red]agent-runtime cannot start:[/] {exc}")
        raise typer.Exit(2) from None
    telemetry.install_log_correlation()
    providers = telemetry.configure(service_version=service_version())
    fastapi_app = create_app(settings, telemetry_providers=providers)
    config = uvicorn.Config(
        fastapi_app,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=5,
        log_config=None,
    )
    server = _Server(config)
    # Everything imported so far lives as long as the process: moved out of the garbage
    # collector's reach, so a full collection under load walks only what requests made.
    gc.collect()
    gc.freeze()
    try:
        server.run()
    finally:
        telemetry.shutdown(providers)


class _Server:
    """uvicorn's server, telling the service to end waiting streams when asked to exit."""

    def __init__(self, config: Any) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                runtime = getattr(config.app.state, "runtime", None)
                if runtime is not None:
                    runtime.orchestrator.shutdown()
                super().handle_exit(sig, frame)
                # uvicorn re-raises a captured signal after run(), which would kill the
                # process before telemetry is flushed: a handled SIGTERM is a clean exit.
                self._captured_signals.clear()

        self._server = Server(config)

    def run(self) -> None:
        self._server.run()


@app.command()
def demo() -> None:
    """Run the offline demo and print each request's timeline and the metrics."""
    from agent_runtime.demo import run_demo

    raise typer.Exit(asyncio.run(run_demo(console)))


@app.command()
def timeline(
    trace_id: str,
    url: Annotated[str | None, typer.Option(help="service URL")] = None,
) -> None:
    """Print the timeline of one request from a running service."""
    from agent_runtime.demo import print_timeline
    from agent_runtime.settings import Settings
    from telemetry import TimelineEntry

    settings = Settings()
    base = url or f"http://127.0.0.1:{settings.port}"
    headers = {}
    if settings.internal_key is not None:
        headers["X-Internal-Auth"] = settings.internal_key.get_secret_value()
    try:
        response = httpx.get(f"{base}/v1/traces/{trace_id}/timeline", headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {base}: {exc}[/]")
        raise typer.Exit(2) from exc
    if response.status_code != 200:
        console.print(f"[red]{response.status_code}: {response.text}[/]")
        raise typer.Exit(1)
    entries = [TimelineEntry(**e) for e in response.json()["entries"]]
    print_timeline(console, trace_id, entries)


def main() -> None:
    app()
