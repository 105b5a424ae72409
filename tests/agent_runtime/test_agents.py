"""Agents from a TOML file: the default file, the schema, and every start-up failure."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent_runtime import agents
from agent_runtime.agents import (
    AGENTS,
    ORCHESTRATOR,
    ROUTABLE_AGENTS,
    AgentCatalog,
    AgentsFileError,
    AgentSpec,
    handoff_target,
    load_agents,
)
from agent_runtime.tools import default_registry
from telemetry import names

TOOLS = default_registry().names
ROUTER = '[agents.orchestrator]\ndescription = "Route."\n'
ASK = '[agents.ask]\ndescription = "Answer."\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agents.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> AgentCatalog:
    return load_agents(write(tmp_path, text), known_tools=TOOLS)


def failure(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(AgentsFileError) as raised:
        load_agents(path, known_tools=TOOLS)
    message = str(raised.value)
    assert message.startswith(f"agents file {path}: ")
    return message.removeprefix(f"agents file {path}: ")


def test_the_default_file_is_the_five_built_in_agents() -> None:
    catalog = load_agents(None, known_tools=TOOLS)

    assert list(catalog) == ["orchestrator", "coder", "debug", "architect", "ask"]
    assert catalog.router.name == ORCHESTRATOR
    assert catalog.routable == ("coder", "debug", "architect", "ask")
    assert catalog.fallback == "ask"
    assert catalog["coder"].tools == ("read_file", "write_file", "list_files", "execute_command")
    assert catalog["debug"].tools == ("read_file", "list_files")
    assert catalog["debug"].handoffs == ("coder",)
    assert catalog["architect"].tools == ("read_file", "list_files")
    assert catalog["ask"].tools == catalog["ask"].handoffs == ()
    assert {spec.model for spec in catalog.values()} == {None}
    assert catalog["coder"].system_prompt == (
        "You are the coder agent. Write and change code in the workspace; run commands to check it."
    )
    assert catalog.router.system_prompt.startswith(
        "You are the orchestrator agent. Route the user's message"
    )
    assert catalog.source.endswith("agents.toml")


def test_the_default_file_is_a_resource_of_the_package() -> None:
    # What a wheel installs: the file is read with importlib.resources, beside agents.py.
    module_file = agents.__file__
    assert module_file is not None
    assert (Path(module_file).parent / agents.AGENTS_FILE_NAME).is_file()
    assert load_agents(None, known_tools=TOOLS).source == str(
        Path(module_file).parent / agents.AGENTS_FILE_NAME
    )


def test_the_shims_keep_current_callers_working() -> None:
    assert ROUTABLE_AGENTS == ("coder", "debug", "architect", "ask")
    assert AGENTS["debug"].handoff_tool("coder") == f"{names.HANDOFF_TOOL_PREFIX}coder"
    assert agents.HANDOFF_PREFIX == names.HANDOFF_TOOL_PREFIX
    assert handoff_target(f"{names.HANDOFF_TOOL_PREFIX}coder") == "coder"
    assert handoff_target(f"{names.HANDOFF_TOOL_PREFIX}nobody") is None
    assert handoff_target("write_file") is None


def test_a_spec_hands_over_only_to_its_own_targets() -> None:
    debug = AGENTS["debug"]

    assert debug.handoff_target(debug.handoff_tool("coder")) == "coder"
    assert debug.handoff_target(debug.handoff_tool("ask")) is None
    assert debug.handoff_target("coder") is None
    assert AGENTS["coder"].handoff_target(debug.handoff_tool("coder")) is None


def test_every_key_of_the_schema_is_read(tmp_path: Path) -> None:
    catalog = load(
        tmp_path,
        """
        fallback = "helper"

        [agents.orchestrator]
        description = "Route."
        model = "small-router"

        [agents.coder]
        description = "Write code."
        system_prompt = "You are the coder agent. Be terse."
        tools = ["write_file", "read_file"]
        handoffs = ["reviewer"]
        model = "big-coder"

        [agents.reviewer]
        description = "Review code."
        routable = false

        [agents.helper]
        description = "Help."
        """,
    )

    assert catalog.router.model == "small-router"
    assert catalog["coder"] == AgentSpec(
        "coder",
        "Write code.",
        tools=("write_file", "read_file"),
        handoffs=("reviewer",),
        system_prompt="You are the coder agent. Be terse.",
        model="big-coder",
    )
    assert catalog["reviewer"].system_prompt == "You are the reviewer agent. Review code."
    assert catalog["reviewer"].routable is False
    assert catalog.routable == ("coder", "helper")
    assert catalog.fallback == "helper"
    assert "reviewer" in catalog
    assert "nobody" not in catalog
    assert catalog.get("nobody") is None
    assert len(catalog) == 4


def test_the_router_is_never_routable_even_in_a_catalog_built_by_hand() -> None:
    catalog = AgentCatalog(
        [AgentSpec(ORCHESTRATOR, "Route."), AgentSpec("ask", "Answer.")],
        fallback="ask",
        source="(test)",
    )

    assert catalog.routable == ("ask",)
    assert catalog.router.name == ORCHESTRATOR


def test_the_catalog_cannot_be_changed(tmp_path: Path) -> None:
    catalog = load(tmp_path, ROUTER + ASK)

    with pytest.raises(TypeError):
        catalog["ask"] = catalog["ask"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        catalog.router = catalog["ask"]  # type: ignore[misc]
    with pytest.raises(AttributeError):
        catalog["ask"].tools = ("write_file",)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            ROUTER + '[agents.debug]\ndescription = "D."\nhandoffs = ["codr"]\n',
            "agents.debug.handoffs: unknown agent 'codr'",
        ),
        (
            ROUTER + '[agents.coder]\ndescription = "C."\ntools = ["write_fil"]\n',
            "agents.coder.tools: unknown tool 'write_fil' (known: execute_command, list_files, "
            "read_file, write_file)",
        ),
        (
            ROUTER + '[agents.coder]\ndescription = "C."\nhandoffs = ["coder"]\n',
            "agents.coder.handoffs: 'coder' cannot hand over to itself",
        ),
        (
            ROUTER + ASK + '[agents.coder]\ndescription = "C."\nhandoffs = ["orchestrator"]\n',
            "agents.coder.handoffs: cannot hand over to the router",
        ),
        (
            ROUTER + '[agents.coder]\ndescription = "C."\ntoolz = []\n',
            "agents.coder.toolz: unknown key (expected one of: description, handoffs, model, "
            "routable, system_prompt, tools)",
        ),
        (
            "agent = 1\n" + ROUTER + ASK,
            "agent: unknown key (expected one of: agents, fallback)",
        ),
        (
            ROUTER + '[agents.coder]\ntools = ["read_file"]\n',
            "agents.coder: missing key 'description'",
        ),
        (
            ROUTER + "[agents.coder]\ndescription = 3\n",
            "agents.coder.description: must be a string, not a number",
        ),
        (
            ROUTER + '[agents.coder]\ndescription = " "\n',
            "agents.coder.description: must not be empty",
        ),
        (
            ROUTER + '[agents.coder]\ndescription = "C."\ntools = "read_file"\n',
            "agents.coder.tools: must be a list of strings, not a string",
        ),
        (
            ROUTER + '[agents.coder]\ndescription = "C."\nhandoffs = ["ask", 2]\n' + ASK,
            "agents.coder.handoffs: must be a list of strings; item 1 is a number",
        ),
        (
            ROUTER + '[agents.coder]\ndescription = "C."\ntools = ["read_file", "read_file"]\n',
            "agents.coder.tools: listed more than once: read_file",
        ),
        (
            ROUTER + '[agents.coder]\ndescription = "C."\nroutable = "yes"\n',
            "agents.coder.routable: must be true or false, not a string",
        ),
        (
            ROUTER + '[agents.coder]\ndescription = "C."\nmodel = ""\n',
            "agents.coder.model: must not be empty",
        ),
        ('agents.coder = "C."\n' + ROUTER, "agents.coder: must be a table, not a string"),
        (
            ROUTER + '[agents.Coder-1]\ndescription = "C."\n',
            "agents.Coder-1: invalid agent name 'Coder-1': use lower-case letters, digits and "
            f"'_', starting with a letter, at most {64 - len(names.HANDOFF_TOOL_PREFIX)} "
            "characters",
        ),
        (ASK, "agents: no 'orchestrator' agent: the router must exist"),
        (ROUTER, "agents: no routable agent for the router to choose"),
        (
            ROUTER + '[agents.ask]\ndescription = "A."\nroutable = false\n',
            "agents: no routable agent for the router to choose",
        ),
        (
            '[agents.orchestrator]\ndescription = "R."\nroutable = true\n' + ASK,
            "agents.orchestrator.routable: the router is never routed to",
        ),
        (
            '[agents.orchestrator]\ndescription = "R."\ntools = ["read_file"]\n' + ASK,
            "agents.orchestrator.tools: the router answers with a routing decision only",
        ),
        (
            ROUTER + '[agents.coder]\ndescription = "C."\n',
            "fallback: unknown agent 'ask'; set fallback to one of coder",
        ),
        (
            'fallback = "helper"\n' + ROUTER + ASK + '[agents.helper]\ndescription = "H."\n'
            "routable = false\n",
            "fallback: 'helper' is not routable; set fallback to one of ask",
        ),
        ('fallback = ["ask"]\n' + ROUTER + ASK, "fallback: must be a string, not a list"),
        ('agents = "all"\n', "agents: must be a table of agents, not a string"),
        ("[agents]\n", "agents: declares no agents"),
        ("", "is empty: declare agents as [agents.<name>] tables"),
        ("# only a comment\n", "is empty: declare agents as [agents.<name>] tables"),
    ],
)
def test_a_bad_file_fails_naming_the_file_and_the_entry(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert failure(tmp_path, text) == expected


def test_invalid_toml_fails_with_the_parser_s_position(tmp_path: Path) -> None:
    message = failure(tmp_path, ROUTER + "[agents.ask\n")

    assert message.startswith("is not valid TOML: ")
    assert "line 3" in message


def test_a_missing_file_fails_at_load(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"

    with pytest.raises(AgentsFileError) as raised:
        load_agents(path, known_tools=TOOLS)

    assert str(raised.value) == f"agents file {path}: cannot be read: No such file or directory"
    assert isinstance(raised.value, ValueError)


def test_a_file_that_is_not_utf8_fails(tmp_path: Path) -> None:
    path = tmp_path / "agents.toml"
    path.write_bytes(b'[agents.orchestrator]\ndescription = "\xff"\n')

    with pytest.raises(AgentsFileError, match=r"is not UTF-8 text"):
        load_agents(path, known_tools=TOOLS)


def test_tools_are_checked_against_the_registry_given(tmp_path: Path) -> None:
    path = write(tmp_path, ROUTER + ASK + '[agents.coder]\ndescription = "C."\ntools = ["x"]\n')

    assert load_agents(path, known_tools=["x"])["coder"].tools == ("x",)
    with pytest.raises(AgentsFileError, match=r"unknown tool 'x' \(known: none\)"):
        load_agents(path, known_tools=[])


def test_the_error_carries_its_parts(tmp_path: Path) -> None:
    path = write(tmp_path, ROUTER + '[agents.debug]\ndescription = "D."\nhandoffs = ["codr"]\n')

    with pytest.raises(AgentsFileError) as raised:
        load_agents(path, known_tools=TOOLS)

    assert (raised.value.source, raised.value.entry) == (str(path), "agents.debug.handoffs")
    assert raised.value.problem == "unknown agent 'codr'"
    assert raised.value.__cause__ is None


def test_the_handoff_prefix_is_defined_once_in_the_sources() -> None:
    src = Path(agents.__file__ or "").parent.parent
    prefix = names.HANDOFF_TOOL_PREFIX
    literal = f'"{prefix}'
    defining = [
        path.relative_to(src).as_posix()
        for path in sorted(src.rglob("*.py"))
        if literal in path.read_text(encoding="utf-8")
    ]

    assert defining == ["telemetry/names.py"]
