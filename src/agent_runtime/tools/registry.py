"""ToolRegistry: the tools an agent may call, their schemas, and argument validation.

Arguments come from a model, so they are untrusted: :func:`validate_arguments` checks them
against the tool's JSON schema (the subset the tools use: object, required, properties with
primitive types, no extra keys) *before* ``run`` sees them, and explains what is wrong in a
message the model can act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agent_runtime.errors import InvalidToolArguments, UnknownTool
from agent_runtime.tools.command import CommandPolicy, execute_command_tool
from agent_runtime.tools.definition import ToolDefinition, ToolSchema
from agent_runtime.tools.files import list_files_tool, read_file_tool, write_file_tool
from agent_runtime.tools.workspace import Workspace

__all__ = ["ToolRegistry", "default_registry", "validate_arguments"]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _matches(value: Any, json_type: str) -> bool:
    # bool is an int in Python but not in JSON.
    if json_type in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _JSON_TYPES.get(json_type, (object,)))


def validate_arguments(tool: ToolDefinition, arguments: Any) -> dict[str, Any]:
    """Return ``arguments`` as a dict if they satisfy ``tool.parameters``.

    Raises :class:`InvalidToolArguments` naming the tool and the first problem found.
    """
    if not isinstance(arguments, Mapping):
        raise InvalidToolArguments(f"{tool.name}: arguments must be a JSON object")
    schema = tool.parameters
    properties: Mapping[str, Any] = schema.get("properties", {})
    missing = [key for key in schema.get("required", []) if key not in arguments]
    if missing:
        raise InvalidToolArguments(f"{tool.name}: missing required argument(s): {missing}")
    if schema.get("additionalProperties") is False:
        unknown = sorted(str(key) for key in arguments if key not in properties)
        if unknown:
            raise InvalidToolArguments(f"{tool.name}: unexpected argument(s): {unknown}")
    for key, value in arguments.items():
        expected = properties.get(key, {}).get("type")
        if expected is None:
            continue
        types = [expected] if isinstance(expected, str) else list(expected)
        if not any(_matches(value, json_type) for json_type in types):
            raise InvalidToolArguments(
                f"{tool.name}: argument {key!r} must be of type {' or '.join(types)}, "
                f"not {_json_type_name(value)}"
            )
    return dict(arguments)


def _json_type_name(value: Any) -> str:
    for name in _JSON_TYPES:
        if _matches(value, name):
            return name
    return type(value).__name__


class ToolRegistry:
    """A fixed set of tools by name. Agents are offered a subset via :meth:`specs_for`."""

    def __init__(self, tools: Iterable[ToolDefinition]) -> None:
        self._tools: dict[str, ToolDefinition] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"tool {tool.name!r} is registered twice")
            self._tools[tool.name] = tool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> ToolDefinition:
        """The tool called ``name``; :class:`UnknownTool` when the model invented one."""
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownTool(f"unknown tool {name[:64]!r}") from None

    def specs_for(self, names: Iterable[str]) -> list[ToolSchema]:
        """(name, description, parameters) of each named tool, in the order given."""
        return [self.get(name).schema for name in names]

    def validate(self, name: str, arguments: Any) -> dict[str, Any]:
        """Look the tool up and validate ``arguments`` for it (see :func:`validate_arguments`).

        The HITL flow calls this twice: on the model's arguments, and on a human's EDIT.
        """
        return validate_arguments(self.get(name), arguments)

    async def run(self, name: str, workspace: Workspace, arguments: Any) -> str:
        """Validate, then run. Every failure is a ``ToolError`` subclass."""
        tool = self.get(name)
        return await tool.run(workspace, validate_arguments(tool, arguments))


def default_registry(command_policy: CommandPolicy | None = None) -> ToolRegistry:
    """read_file, write_file, list_files and execute_command (bound to ``command_policy``)."""
    return ToolRegistry(
        [
            read_file_tool(),
            write_file_tool(),
            list_files_tool(),
            execute_command_tool(command_policy),
        ]
    )
