"""``execute_command``: run one allow-listed program in the workspace, without a shell.

Why it is shaped this way:

- **No shell.** The command line is split with :func:`shlex.split` and executed directly,
  so ``;``, ``|``, ``&&``, ``$(...)`` and backticks are plain argument text, never syntax.
- **Allow-list on the program.** ``argv[0]`` must be a bare name from the policy (no path),
  looked up on a ``PATH`` that starts with the service interpreter's folder, so ``python``
  is the service's own interpreter.
- **Minimal environment.** The child gets only ``PATH``, ``HOME`` (the workspace) and a
  UTF-8 locale: nothing from the service's environment (API keys, the internal auth key,
  database URLs) is ever passed on.
- **Bounded.** The program runs in its own process group; on timeout, cancellation (client
  gone) or after it exits, the whole group is killed, so no stray child survives. Output
  (stdout and stderr merged) is read incrementally and capped.

This confines *where the command starts*, not what it can do: an allowed interpreter can
still read and write anything the service user can. That is why the tool always needs a
human's approval.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.errors import CommandNotAllowed, CommandTimeout, ToolError
from agent_runtime.tools.definition import ToolDefinition
from agent_runtime.tools.workspace import Workspace

__all__ = ["DEFAULT_ALLOWED_COMMANDS", "CommandPolicy", "execute_command_tool", "run_command"]

DEFAULT_ALLOWED_COMMANDS: frozenset[str] = frozenset(
    {"python", "python3", "pytest", "ls", "cat", "echo", "grep", "wc", "head", "tail"}
)
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    """What ``execute_command`` may run, for how long, and how much output it keeps."""

    allowed_commands: frozenset[str] = field(default=DEFAULT_ALLOWED_COMMANDS)
    timeout_s: float = 10.0
    max_output_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if self.max_output_bytes <= 0:
            raise ValueError("max_output_bytes must be positive")


def _child_env(workspace: Workspace) -> dict[str, str]:
    """Build the environment from scratch; copying and deleting would leak new secrets."""
    search_path = os.pathsep.join(
        [os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)]
    )
    return {
        "PATH": search_path,
        "HOME": str(workspace.root),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }


def _parse(command: str, policy: CommandPolicy, env: dict[str, str]) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise CommandNotAllowed(f"command line cannot be parsed: {exc}") from None
    if not argv:
        raise CommandNotAllowed("command is empty")
    program = argv[0]
    if program not in policy.allowed_commands:
        allowed = ", ".join(sorted(policy.allowed_commands))
        raise CommandNotAllowed(f"command {program[:64]!r} is not allowed; allowed: {allowed}")
    executable = shutil.which(program, path=env["PATH"])
    if executable is None:
        raise ToolError(f"command {program!r} is not installed on this server")
    return [executable, *argv[1:]]


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Read to EOF keeping the first ``limit`` bytes; draining the rest keeps the child
    from blocking on a full pipe."""
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(_READ_CHUNK):
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            truncated = True
    return bytes(kept), truncated


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pid, signal.SIGKILL)


async def run_command(workspace: Workspace, command: str, policy: CommandPolicy) -> str:
    """Run ``command`` and return ``exit code: N`` followed by its (capped) output."""
    env = _child_env(workspace)
    argv = _parse(command, policy, env)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=workspace.root,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(f"command could not start: {exc.strerror or type(exc).__name__}") from None
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(policy.timeout_s):
            output, truncated = await _read_capped(proc.stdout, policy.max_output_bytes)
            code = await proc.wait()
    except TimeoutError:
        raise CommandTimeout(
            f"command timed out after {policy.timeout_s:g} s and was killed"
        ) from None
    finally:
        # Always, not only on timeout: background children left by a finished command die
        # with the group too.
        _kill_group(proc.pid)
        if proc.returncode is None:
            await proc.wait()
    text = output.decode("utf-8", errors="replace")
    if truncated:
        text += f"\n[output truncated at {policy.max_output_bytes} bytes]"
    return f"exit code: {code}\n{text}"


def execute_command_tool(policy: CommandPolicy | None = None) -> ToolDefinition:
    """The ``execute_command`` tool bound to ``policy`` (defaults: the allow-list, 10 s)."""
    bound = policy or CommandPolicy()

    async def run(workspace: Workspace, arguments: dict[str, Any]) -> str:
        return await run_command(workspace, arguments["command"], bound)

    allowed = ", ".join(sorted(bound.allowed_commands))
    return ToolDefinition(
        name="execute_command",
        description=(
            "Run one command in the session workspace, without a shell (no pipes, "
            f"redirects or ';'). Allowed programs: {allowed}. Times out after "
            f"{bound.timeout_s:g} s. Returns the exit code and the combined output."
        ),
        parameters={
            "type": "object",
            "properties": {"command": {"type": "string", "description": "the command line"}},
            "required": ["command"],
            "additionalProperties": False,
        },
        requires_approval=True,
        approval_reason="runs a command on the server",
        run=run,
    )
