"""File tools: ``read_file``, ``write_file`` and ``list_files``, confined to the workspace.

All paths go through :meth:`Workspace.resolve`. File I/O runs in a worker thread so a large
or slow file never stalls the event loop. Sizes are capped both ways so one tool call can
neither flood the model's context nor fill the disk.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from agent_runtime.errors import PathOutsideWorkspace, ToolError
from agent_runtime.tools.definition import ToolDefinition
from agent_runtime.tools.workspace import Workspace

__all__ = [
    "MAX_LIST_ENTRIES",
    "MAX_READ_BYTES",
    "MAX_WRITE_BYTES",
    "list_files_tool",
    "read_file_tool",
    "write_file_tool",
]

MAX_READ_BYTES = 256 * 1024
MAX_WRITE_BYTES = 1024 * 1024
MAX_LIST_ENTRIES = 500
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


async def _read_file(workspace: Workspace, arguments: dict[str, Any]) -> str:
    path = workspace.resolve(arguments["path"])
    return await asyncio.to_thread(_read_sync, workspace, path)


def _read_sync(workspace: Workspace, path: Path) -> str:
    shown = workspace.relative(path)
    if not path.is_file():
        raise ToolError(f"no such file: {shown}")
    size = path.stat().st_size
    if size > MAX_READ_BYTES:
        raise ToolError(f"{shown} is {size} bytes; read_file reads at most {MAX_READ_BYTES}")
    return path.read_bytes().decode("utf-8", errors="replace")


async def _write_file(workspace: Workspace, arguments: dict[str, Any]) -> str:
    content: str = arguments["content"]
    data = content.encode("utf-8")
    if len(data) > MAX_WRITE_BYTES:
        raise ToolError(
            f"content is {len(data)} bytes; write_file writes at most {MAX_WRITE_BYTES}"
        )
    path = workspace.resolve(arguments["path"])
    if path == workspace.root:
        raise ToolError("write_file needs a file path, not the workspace itself")
    await asyncio.to_thread(_write_sync, workspace, path, data)
    return f"wrote {len(data)} bytes to {workspace.relative(path)}"


def _write_sync(workspace: Workspace, path: Path, data: bytes) -> None:
    # The parent is inside the root because the resolved path is; re-check after mkdir in
    # case a folder was swapped for a symlink meanwhile, and never follow a final symlink.
    path.parent.mkdir(parents=True, exist_ok=True)
    if workspace.resolve(str(path)) != path:
        raise PathOutsideWorkspace("path changed while writing")
    if path.is_dir():
        raise ToolError(f"{workspace.relative(path)} is a directory")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


async def _list_files(workspace: Workspace, arguments: dict[str, Any]) -> str:
    path = workspace.resolve(arguments.get("path") or ".")
    return await asyncio.to_thread(_list_sync, workspace, path)


def _list_sync(workspace: Workspace, top: Path) -> str:
    if not top.is_dir():
        raise ToolError(f"not a directory: {workspace.relative(top)}")
    entries: list[str] = []
    # followlinks=False: a symlinked folder is listed but never entered, so listing cannot
    # wander outside the workspace.
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for name in dirnames:
            entries.append(workspace.relative(base / name) + "/")
        for name in sorted(filenames):
            entries.append(workspace.relative(base / name))
        if len(entries) > MAX_LIST_ENTRIES:
            break
    if not entries:
        return "(empty)"
    entries.sort()
    if len(entries) > MAX_LIST_ENTRIES:
        shown = "\n".join(entries[:MAX_LIST_ENTRIES])
        return f"{shown}\n[truncated: more than {MAX_LIST_ENTRIES} entries]"
    return "\n".join(entries)


def read_file_tool() -> ToolDefinition:
    return ToolDefinition(
        name="read_file",
        description=(
            f"Read a UTF-8 text file from the session workspace (at most {MAX_READ_BYTES} "
            "bytes). Paths are relative to the workspace root."
        ),
        parameters={
            "type": "object",
            "properties": {"path": {"type": "string", "description": "file to read"}},
            "required": ["path"],
            "additionalProperties": False,
        },
        requires_approval=False,
        approval_reason=None,
        run=_read_file,
    )


def write_file_tool() -> ToolDefinition:
    return ToolDefinition(
        name="write_file",
        description=(
            "Create or overwrite a text file in the session workspace, creating missing "
            "folders. Paths are relative to the workspace root."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "file to write"},
                "content": {"type": "string", "description": "the complete new content"},
            },
            "required": ["path", "content"],
            "additionalProperties": False,
        },
        requires_approval=True,
        approval_reason="writes to the workspace",
        run=_write_file,
    )


def list_files_tool() -> ToolDefinition:
    return ToolDefinition(
        name="list_files",
        description=(
            "List files and folders (folders end with '/') under a folder of the session "
            "workspace, recursively; the whole workspace when no path is given."
        ),
        parameters={
            "type": "object",
            "properties": {"path": {"type": "string", "description": "folder to list"}},
            "required": [],
            "additionalProperties": False,
        },
        requires_approval=False,
        approval_reason=None,
        run=_list_files,
    )
