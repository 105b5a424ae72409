"""The agents: who each one is, which tools it may call, to whom it may hand over, which model.

An agent is data, not code: its system prompt, its tools, its handoff targets and optionally
the model its calls use. The orchestrator runs any of them the same way. The agents come from
a TOML file (``AGENT_RUNTIME_AGENTS_FILE``); the five built-in agents are the default file
shipped in this package (``agents.toml`` beside this module)::

    fallback = "ask"          # optional: where an unusable routing answer goes (default "ask")

    [agents.coder]
    description = "Write and change code in the workspace; run commands to check it."
    system_prompt = "..."     # optional; default "You are the coder agent. <description>"
    tools = ["read_file", "write_file", "list_files", "execute_command"]   # optional
    handoffs = []             # optional: agents it may hand over to (one handoff tool each)
    model = "gpt-4o-mini"     # optional: the model name for this agent's calls
    routable = true           # optional, default true: may the router pick it?

The agent named ``orchestrator`` is the router and must exist: it answers with a routing
decision, so it takes no tools or handoffs and is never routed to. Agents with
``routable = false`` are reached only by a handoff.

Why everything is checked at load time, before the service serves a request: a typo in a
tool or agent name would otherwise surface as a model calling a tool that does not exist,
in the middle of a user's conversation. :func:`load_agents` raises :class:`AgentsFileError`
naming the file and the entry instead (``agents file /x/agents.toml: agents.debug.handoffs:
unknown agent 'codr'``).

Usage::

    catalog = load_agents(settings.agents_file, known_tools=registry.names)
    spec = catalog["coder"]            # an AgentSpec; catalog.router, catalog.routable
    target = spec.handoff_target(call.name)   # the agent a handoff tool hands over to
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from agent_runtime.tools import default_registry
from telemetry import names

__all__ = [
    "AGENTS",
    "AGENTS_FILE_NAME",
    "DEFAULT_FALLBACK",
    "HANDOFF_PREFIX",
    "ORCHESTRATOR",
    "ROUTABLE_AGENTS",
    "AgentCatalog",
    "AgentSpec",
    "AgentsFileError",
    "handoff_target",
    "load_agents",
]

ORCHESTRATOR: Final = "orchestrator"
"""The router's name: the agent that picks which agent answers a user message."""

DEFAULT_FALLBACK: Final = "ask"
"""Where the router's unusable answers go unless the file sets ``fallback``."""

AGENTS_FILE_NAME: Final = "agents.toml"
"""The default agents file, a resource of this package."""

HANDOFF_PREFIX: Final = names.HANDOFF_TOOL_PREFIX
"""Kept for current callers; the one definition is :data:`telemetry.names.HANDOFF_TOOL_PREFIX`."""

# Agent names end up in handoff tool names, which providers limit to 64 characters of
# [a-zA-Z0-9_-]; lower case keeps metric attributes and the scripted model's matching simple.
_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
_MAX_NAME = 64 - len(names.HANDOFF_TOOL_PREFIX)
_TOP_KEYS = ("agents", "fallback")
_AGENT_KEYS = ("description", "handoffs", "model", "routable", "system_prompt", "tools")


class AgentsFileError(ValueError):
    """The agents file cannot be used; the message names the file and the entry at fault."""

    def __init__(self, source: str, entry: str, problem: str) -> None:
        self.source = source
        self.entry = entry
        self.problem = problem
        where = f"{entry}: " if entry else ""
        super().__init__(f"agents file {source}: {where}{problem}")


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent. Each name in ``handoffs`` becomes a handoff tool offered to the model.

    ``system_prompt`` left empty means ``"You are the <name> agent. <description>"``: the
    offline scripted model recognises the agent by that first sentence. ``model`` is the
    model name for this agent's calls, ``None`` for the service's default.
    """

    name: str
    description: str
    tools: tuple[str, ...] = ()
    handoffs: tuple[str, ...] = ()
    system_prompt: str = ""
    model: str | None = None
    routable: bool = True

    def __post_init__(self) -> None:
        if not self.system_prompt:
            default = f"You are the {self.name} agent. {self.description}"
            object.__setattr__(self, "system_prompt", default)

    def handoff_tool(self, target: str) -> str:
        """The name of the tool that hands over to ``target``."""
        return f"{names.HANDOFF_TOOL_PREFIX}{target}"

    def handoff_target(self, tool_name: str) -> str | None:
        """The agent ``tool_name`` hands over to, or None unless this agent may hand to it."""
        if not tool_name.startswith(names.HANDOFF_TOOL_PREFIX):
            return None
        target = tool_name.removeprefix(names.HANDOFF_TOOL_PREFIX)
        return target if target in self.handoffs else None


class AgentCatalog(Mapping[str, AgentSpec]):
    """Every agent by name (in file order), immutable; built by :func:`load_agents`.

    The invariants the loader checks hold for every catalog: the router exists, every
    handoff names another agent here (never the router), at least one agent is routable,
    and the fallback is routable.
    """

    __slots__ = ("_agents", "_fallback", "_routable", "_source")

    def __init__(self, agents: Sequence[AgentSpec], *, fallback: str, source: str) -> None:
        self._agents: Mapping[str, AgentSpec] = MappingProxyType({a.name: a for a in agents})
        self._routable = tuple(a.name for a in agents if a.routable and a.name != ORCHESTRATOR)
        self._fallback = fallback
        self._source = source

    def __getitem__(self, name: str) -> AgentSpec:
        return self._agents[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._agents)

    def __len__(self) -> int:
        return len(self._agents)

    def __repr__(self) -> str:
        return f"AgentCatalog({list(self._agents)!r}, source={self._source!r})"

    @property
    def router(self) -> AgentSpec:
        """The orchestrator agent, which routes each user message."""
        return self._agents[ORCHESTRATOR]

    @property
    def routable(self) -> tuple[str, ...]:
        """The agents the router may pick, in file order (never the router itself)."""
        return self._routable

    @property
    def fallback(self) -> str:
        """The routable agent an unusable routing answer goes to."""
        return self._fallback

    @property
    def source(self) -> str:
        """The file the catalog was loaded from, for messages."""
        return self._source


def load_agents(path: Path | None = None, *, known_tools: Collection[str]) -> AgentCatalog:
    """The agents declared in ``path`` (the package's default file when ``None``).

    ``known_tools`` are the tool registry's names: an agent naming any other tool is an
    error. Raises :class:`AgentsFileError` for a missing or unreadable file, invalid TOML,
    an empty file, unknown keys, wrong types, unknown tools or handoff targets, a handoff
    to itself or to the router, and a missing router.
    """
    if path is None:
        resource = resources.files("agent_runtime").joinpath(AGENTS_FILE_NAME)
        source = str(resource)
        try:
            raw = resource.read_bytes()
        except OSError as exc:
            raise AgentsFileError(source, "", f"cannot be read: {exc}") from exc
    else:
        source = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise AgentsFileError(source, "", f"cannot be read: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AgentsFileError(source, "", f"is not UTF-8 text: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AgentsFileError(source, "", f"is not valid TOML: {exc}") from exc
    try:
        agents, fallback = _parse(data, frozenset(known_tools))
    except _EntryError as exc:
        raise AgentsFileError(source, exc.entry, exc.problem) from None
    return AgentCatalog(agents, fallback=fallback, source=source)


class _EntryError(Exception):
    """One problem at one entry; :func:`load_agents` adds the file's name."""

    def __init__(self, entry: str, problem: str) -> None:
        super().__init__(f"{entry}: {problem}")
        self.entry = entry
        self.problem = problem


def _parse(data: Mapping[str, Any], known_tools: frozenset[str]) -> tuple[list[AgentSpec], str]:
    if not data:
        raise _EntryError("", "is empty: declare agents as [agents.<name>] tables")
    _check_keys("", data, _TOP_KEYS)
    tables = data.get("agents")
    if not isinstance(tables, dict):
        raise _EntryError("agents", f"must be a table of agents, not {_kind(tables)}")
    if not tables:
        raise _EntryError("agents", "declares no agents")
    declared = frozenset(tables)
    agents = [_agent(name, table, declared, known_tools) for name, table in tables.items()]
    if ORCHESTRATOR not in declared:
        raise _EntryError("agents", f"no {ORCHESTRATOR!r} agent: the router must exist")
    routable = [a.name for a in agents if a.routable and a.name != ORCHESTRATOR]
    if not routable:
        raise _EntryError("agents", "no routable agent for the router to choose")
    fallback = data.get("fallback", DEFAULT_FALLBACK)
    if not isinstance(fallback, str):
        raise _EntryError("fallback", f"must be a string, not {_kind(fallback)}")
    if fallback not in routable:
        hint = f"set fallback to one of {', '.join(routable)}"
        if fallback not in declared:
            raise _EntryError("fallback", f"unknown agent {fallback!r}; {hint}")
        raise _EntryError("fallback", f"{fallback!r} is not routable; {hint}")
    return agents, fallback


def _agent(
    name: str, table: object, declared: frozenset[str], known_tools: frozenset[str]
) -> AgentSpec:
    entry = f"agents.{name}"
    if not _NAME_RE.fullmatch(name) or len(name) > _MAX_NAME:
        raise _EntryError(
            entry,
            f"invalid agent name {name!r}: use lower-case letters, digits and '_', starting "
            f"with a letter, at most {_MAX_NAME} characters",
        )
    if not isinstance(table, dict):
        raise _EntryError(entry, f"must be a table, not {_kind(table)}")
    _check_keys(f"{entry}.", table, _AGENT_KEYS)
    if "description" not in table:
        raise _EntryError(entry, "missing key 'description'")
    description = _text(entry, table, "description")
    system_prompt = _text(entry, table, "system_prompt") if "system_prompt" in table else ""
    model = _text(entry, table, "model") if "model" in table else None
    routable = table.get("routable", name != ORCHESTRATOR)
    if not isinstance(routable, bool):
        raise _EntryError(f"{entry}.routable", f"must be true or false, not {_kind(routable)}")
    tools = _names(entry, table, "tools")
    handoffs = _names(entry, table, "handoffs")
    if name == ORCHESTRATOR:
        if routable:
            raise _EntryError(f"{entry}.routable", "the router is never routed to")
        for key, value in (("tools", tools), ("handoffs", handoffs)):
            if value:
                raise _EntryError(
                    f"{entry}.{key}", "the router answers with a routing decision only"
                )
    for tool in tools:
        if tool not in known_tools:
            known = ", ".join(sorted(known_tools)) or "none"
            raise _EntryError(f"{entry}.tools", f"unknown tool {tool!r} (known: {known})")
    for target in handoffs:
        if target == name:
            raise _EntryError(f"{entry}.handoffs", f"{name!r} cannot hand over to itself")
        if target == ORCHESTRATOR:
            raise _EntryError(f"{entry}.handoffs", "cannot hand over to the router")
        if target not in declared:
            raise _EntryError(f"{entry}.handoffs", f"unknown agent {target!r}")
    return AgentSpec(name, description, tools, handoffs, system_prompt, model, routable)


def _check_keys(prefix: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise _EntryError(
                f"{prefix}{key}", f"unknown key (expected one of: {', '.join(allowed)})"
            )


def _text(entry: str, table: Mapping[str, Any], key: str) -> str:
    value = table[key]
    if not isinstance(value, str):
        raise _EntryError(f"{entry}.{key}", f"must be a string, not {_kind(value)}")
    if not value.strip():
        raise _EntryError(f"{entry}.{key}", "must not be empty")
    return value


def _names(entry: str, table: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise _EntryError(f"{entry}.{key}", f"must be a list of strings, not {_kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _EntryError(
                f"{entry}.{key}", f"must be a list of strings; item {index} is {_kind(item)}"
            )
    duplicates = sorted({item for item in value if value.count(item) > 1})
    if duplicates:
        raise _EntryError(f"{entry}.{key}", f"listed more than once: {', '.join(duplicates)}")
    return tuple(value)


def _kind(value: object) -> str:
    """A TOML-ish name for a value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


# --- shims for current callers: the package's default agents, loaded once at import ------

AGENTS: Final[AgentCatalog] = load_agents(None, known_tools=default_registry().names)
"""The default file's agents by name; callers move to a catalog from :func:`load_agents`."""

ROUTABLE_AGENTS: Final = AGENTS.routable
"""The default file's routable agents; callers move to :attr:`AgentCatalog.routable`."""


def handoff_target(tool_name: str) -> str | None:
    """The default agent a handoff tool hands over to, or None for other tools.

    Kept for current callers; :meth:`AgentSpec.handoff_target` also checks that the agent
    asking may hand over to that target.
    """
    if tool_name.startswith(names.HANDOFF_TOOL_PREFIX):
        target = tool_name.removeprefix(names.HANDOFF_TOOL_PREFIX)
        return target if target in AGENTS else None
    return None
