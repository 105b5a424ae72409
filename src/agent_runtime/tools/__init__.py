"""Server-side tools, each run inside the session's own workspace folder.

Usage::

    registry = default_registry(CommandPolicy(timeout_s=10.0))
    workspace = Workspace.for_session(settings.data_dir, session_id)
    tool = registry.get("write_file")          # tool.requires_approval -> ask a human first
    arguments = registry.validate("write_file", raw_arguments)
    result = await tool.run(workspace, arguments)   # or: await registry.run(name, ws, raw)

Every failure raises a :class:`~agent_runtime.errors.ToolError` subclass (its ``code`` is a
stable ``error.type``); no path ever resolves outside the workspace.
"""

from agent_runtime.tools.command import DEFAULT_ALLOWED_COMMANDS, CommandPolicy, run_command
from agent_runtime.tools.definition import ToolDefinition, ToolRunner, ToolSchema
from agent_runtime.tools.files import MAX_LIST_ENTRIES, MAX_READ_BYTES, MAX_WRITE_BYTES
from agent_runtime.tools.registry import ToolRegistry, default_registry, validate_arguments
from agent_runtime.tools.workspace import WORKSPACES_DIRNAME, Workspace

__all__ = [
    "DEFAULT_ALLOWED_COMMANDS",
    "MAX_LIST_ENTRIES",
    "MAX_READ_BYTES",
    "MAX_WRITE_BYTES",
    "WORKSPACES_DIRNAME",
    "CommandPolicy",
    "ToolDefinition",
    "ToolRegistry",
    "ToolRunner",
    "ToolSchema",
    "Workspace",
    "default_registry",
    "run_command",
    "validate_arguments",
]
