"""Tools: workspace confinement, each tool, command safety, and argument validation."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from agent_runtime.errors import (
    CommandNotAllowed,
    CommandTimeout,
    InvalidToolArguments,
    PathOutsideWorkspace,
    ToolError,
    UnknownTool,
)
from agent_runtime.tools import (
    MAX_READ_BYTES,
    CommandPolicy,
    ToolRegistry,
    ToolSchema,
    Workspace,
    default_registry,
)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the workspaces with a file no tool may reach."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("top secret")
    return folder


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.for_session(tmp_path / "data", "s1")


@pytest.fixture
def registry() -> ToolRegistry:
    return default_registry(CommandPolicy(timeout_s=5.0))


# --- workspace ------------------------------------------------------------------------


def test_workspace_for_session_is_created_under_data_dir(tmp_path: Path) -> None:
    ws = Workspace.for_session(tmp_path, "abc")
    assert ws.root == (tmp_path / "workspaces" / "abc").resolve()
    assert ws.root.is_dir()


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\\b", "a\0b"])
def test_workspace_for_session_refuses_ids_that_are_not_one_folder(
    tmp_path: Path, bad: str
) -> None:
    with pytest.raises(PathOutsideWorkspace):
        Workspace.for_session(tmp_path, bad)


def test_resolve_accepts_paths_inside(workspace: Workspace) -> None:
    assert workspace.resolve("a/b.txt") == workspace.root / "a" / "b.txt"
    assert workspace.resolve("a/../b.txt") == workspace.root / "b.txt"
    assert workspace.resolve(".") == workspace.root
    assert workspace.resolve(str(workspace.root / "c.txt")) == workspace.root / "c.txt"


@pytest.mark.parametrize(
    "path", ["../x", "../../etc/passwd", "a/../../x", "/etc/passwd", "/", "a\0b", "..\0"]
)
def test_resolve_refuses_escapes(workspace: Workspace, path: str) -> None:
    with pytest.raises(PathOutsideWorkspace) as info:
        workspace.resolve(path)
    assert info.value.code == "path_outside_workspace"


def test_resolve_refuses_symlink_escapes(workspace: Workspace, outside: Path) -> None:
    (workspace.root / "link_dir").symlink_to(outside)
    (workspace.root / "link_file").symlink_to(outside / "secret.txt")
    for path in ("link_dir/secret.txt", "link_dir", "link_file", "link_dir/new.txt"):
        with pytest.raises(PathOutsideWorkspace) as info:
            workspace.resolve(path)
        assert str(outside) not in info.value.message  # never reveal the target


def test_resolve_allows_symlinks_that_stay_inside(workspace: Workspace) -> None:
    (workspace.root / "real").mkdir()
    (workspace.root / "alias").symlink_to(workspace.root / "real")
    assert workspace.resolve("alias/x.txt") == workspace.root / "real" / "x.txt"


# --- file tools -----------------------------------------------------------------------


async def test_write_then_read_file(workspace: Workspace, registry: ToolRegistry) -> None:
    result = await registry.run(
        "write_file", workspace, {"path": "pkg/mod.py", "content": "print('hé')\n"}
    )
    assert result == "wrote 13 bytes to pkg/mod.py"
    assert (workspace.root / "pkg" / "mod.py").read_text() == "print('hé')\n"
    assert await registry.run("read_file", workspace, {"path": "pkg/mod.py"}) == "print('hé')\n"


async def test_read_file_missing_or_directory_fails(
    workspace: Workspace, registry: ToolRegistry
) -> None:
    with pytest.raises(ToolError, match=r"no such file: nope\.txt"):
        await registry.run("read_file", workspace, {"path": "nope.txt"})
    (workspace.root / "d").mkdir()
    with pytest.raises(ToolError, match="no such file"):
        await registry.run("read_file", workspace, {"path": "d"})


async def test_read_file_refuses_files_over_the_cap(
    workspace: Workspace, registry: ToolRegistry
) -> None:
    (workspace.root / "big.bin").write_bytes(b"x" * (MAX_READ_BYTES + 1))
    with pytest.raises(ToolError, match="at most"):
        await registry.run("read_file", workspace, {"path": "big.bin"})


@pytest.mark.parametrize("path", ["../outside/secret.txt", "/etc/passwd", "link/secret.txt"])
async def test_read_file_never_reads_outside(
    workspace: Workspace, registry: ToolRegistry, outside: Path, path: str
) -> None:
    (workspace.root / "link").symlink_to(outside)
    with pytest.raises(PathOutsideWorkspace):
        await registry.run("read_file", workspace, {"path": path})


@pytest.mark.parametrize(
    "path", ["../outside/evil.txt", "../../evil.txt", "link/evil.txt", "link/secret.txt", "f"]
)
async def test_write_file_never_writes_outside(
    workspace: Workspace, registry: ToolRegistry, outside: Path, tmp_path: Path, path: str
) -> None:
    (workspace.root / "link").symlink_to(outside)
    (workspace.root / "f").symlink_to(outside / "secret.txt")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(PathOutsideWorkspace):
        await registry.run("write_file", workspace, {"path": path, "content": "pwned"})
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert (outside / "secret.txt").read_text() == "top secret"


async def test_write_file_refuses_oversized_content_and_the_root(
    workspace: Workspace, registry: ToolRegistry
) -> None:
    with pytest.raises(ToolError, match="at most"):
        await registry.run("write_file", workspace, {"path": "a", "content": "x" * (2 << 20)})
    with pytest.raises(ToolError, match="not the workspace"):
        await registry.run("write_file", workspace, {"path": ".", "content": "x"})
    assert not (workspace.root / "a").exists()


async def test_list_files_is_recursive_and_does_not_follow_symlinked_folders(
    workspace: Workspace, registry: ToolRegistry, outside: Path
) -> None:
    assert await registry.run("list_files", workspace, {}) == "(empty)"
    (workspace.root / "src").mkdir()
    (workspace.root / "src" / "a.py").write_text("")
    (workspace.root / "README").write_text("")
    (workspace.root / "out").symlink_to(outside)
    listing = await registry.run("list_files", workspace, {})
    assert listing.splitlines() == ["README", "out/", "src/", "src/a.py"]
    assert "secret" not in listing
    assert await registry.run("list_files", workspace, {"path": "src"}) == "src/a.py"
    with pytest.raises(PathOutsideWorkspace):
        await registry.run("list_files", workspace, {"path": "out"})
    with pytest.raises(ToolError, match="not a directory"):
        await registry.run("list_files", workspace, {"path": "README"})


# --- execute_command ------------------------------------------------------------------


async def test_execute_command_runs_in_the_workspace(
    workspace: Workspace, registry: ToolRegistry
) -> None:
    (workspace.root / "hello.txt").write_text("one\ntwo\n")
    assert await registry.run("execute_command", workspace, {"command": "cat hello.txt"}) == (
        "exit code: 0\none\ntwo\n"
    )
    cwd = await registry.run(
        "execute_command", workspace, {"command": "python -c 'import os; print(os.getcwd())'"}
    )
    assert cwd == f"exit code: 0\n{workspace.root}\n"


async def test_execute_command_reports_nonzero_exit_and_stderr(
    workspace: Workspace, registry: ToolRegistry
) -> None:
    result = await registry.run(
        "execute_command",
        workspace,
        {"command": "python -c 'import sys; sys.stderr.write(\"boom\"); sys.exit(3)'"},
    )
    assert result == "exit code: 3\nboom"


@pytest.mark.parametrize(
    "command",
    ["rm -rf /", "/bin/ls", "./python", "bash -c 'echo hi'", "sh", "", "  ", "echo 'unbalanced"],
)
async def test_execute_command_refuses_programs_off_the_allow_list_and_malformed_lines(
    workspace: Workspace, registry: ToolRegistry, command: str
) -> None:
    with pytest.raises(CommandNotAllowed) as info:
        await registry.run("execute_command", workspace, {"command": command})
    assert info.value.code == "command_not_allowed"


@pytest.mark.parametrize(
    ("command", "printed"),
    [
        ("echo hi; rm -rf /", "hi; rm -rf /"),
        ("echo hi && touch pwned", "hi && touch pwned"),
        ("echo $(touch pwned) `touch pwned`", "$(touch pwned) `touch pwned`"),
        ("echo hi | tee pwned", "hi | tee pwned"),
        ("echo hi > pwned", "hi > pwned"),
    ],
)
async def test_shell_syntax_is_passed_as_literal_arguments(
    workspace: Workspace, registry: ToolRegistry, command: str, printed: str
) -> None:
    result = await registry.run("execute_command", workspace, {"command": command})
    assert result == f"exit code: 0\n{printed}\n"
    assert not (workspace.root / "pwned").exists()


async def test_execute_command_passes_no_secrets_from_the_service_environment(
    workspace: Workspace, registry: ToolRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("AGENT_RUNTIME_INTERNAL_KEY", "internal-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@db/x")
    result = await registry.run(
        "execute_command",
        workspace,
        {"command": "python -c 'import os, json; print(json.dumps(dict(os.environ)))'"},
    )
    assert "secret" not in result
    assert "pw@" not in result
    env = json.loads(result.split("\n", 1)[1])
    assert set(env) <= {"PATH", "HOME", "LANG", "LC_ALL", "PYTHONUNBUFFERED", "LC_CTYPE"}
    assert env["HOME"] == str(workspace.root)


async def test_execute_command_timeout_kills_the_process(workspace: Workspace) -> None:
    registry = default_registry(CommandPolicy(timeout_s=1.5))
    script = "import os, time; open('pid', 'w').write(str(os.getpid())); time.sleep(30)"
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"timed out after 1\.5 s"):
        await registry.run("execute_command", workspace, {"command": f'python -c "{script}"'})
    assert time.monotonic() - started < 6.0  # the timeout, not the sleep, ended it
    assert_dead(int((workspace.root / "pid").read_text()))


async def test_execute_command_timeout_kills_grandchildren_too(workspace: Workspace) -> None:
    registry = default_registry(CommandPolicy(timeout_s=1.5))
    script = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "open('pid', 'w').write(str(child.pid)); time.sleep(30)"
    )
    with pytest.raises(CommandTimeout):
        await registry.run("execute_command", workspace, {"command": f'python -c "{script}"'})
    assert_dead(int((workspace.root / "pid").read_text()))


async def test_cancelling_the_call_kills_the_command(workspace: Workspace) -> None:
    registry = default_registry(CommandPolicy(timeout_s=20.0))
    script = "import os, time; open('pid', 'w').write(str(os.getpid())); time.sleep(30)"
    task = asyncio.create_task(
        registry.run("execute_command", workspace, {"command": f'python -c "{script}"'})
    )
    pid_file = workspace.root / "pid"
    async with asyncio.timeout(10):
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_dead(int(pid_file.read_text()))


def assert_dead(pid: int) -> None:
    """The process is gone (reaped, or a zombie of an already-killed group member)."""
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "State:\tZ" in status.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} is still running")


async def test_execute_command_truncates_long_output(workspace: Workspace) -> None:
    registry = default_registry(CommandPolicy(max_output_bytes=100))
    result = await registry.run(
        "execute_command", workspace, {"command": "python -c 'print(\"x\" * 100000)'"}
    )
    assert result == "exit code: 0\n" + "x" * 100 + "\n[output truncated at 100 bytes]"


async def test_allow_list_is_configurable(workspace: Workspace) -> None:
    registry = default_registry(CommandPolicy(allowed_commands=frozenset({"echo"})))
    assert await registry.run("execute_command", workspace, {"command": "echo ok"}) == (
        "exit code: 0\nok\n"
    )
    with pytest.raises(CommandNotAllowed):
        await registry.run("execute_command", workspace, {"command": "python -V"})


@pytest.mark.parametrize("policy", [{"timeout_s": 0}, {"max_output_bytes": 0}])
def test_command_policy_refuses_nonsense(policy: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        CommandPolicy(**policy)  # type: ignore[arg-type]


# --- registry and validation ----------------------------------------------------------


def test_registry_knows_each_tool_and_its_approval_policy(registry: ToolRegistry) -> None:
    assert registry.names == ("read_file", "write_file", "list_files", "execute_command")
    policy = {name: registry.get(name).requires_approval for name in registry.names}
    assert policy == {
        "read_file": False,
        "write_file": True,
        "list_files": False,
        "execute_command": True,
    }
    assert registry.get("write_file").approval_reason == "writes to the workspace"
    assert registry.get("read_file").approval_reason is None


def test_specs_for_gives_name_description_parameters_in_order(registry: ToolRegistry) -> None:
    specs = registry.specs_for(["write_file", "read_file"])
    assert [s.name for s in specs] == ["write_file", "read_file"]
    name, description, parameters = specs[1]
    assert isinstance(specs[1], ToolSchema)
    assert name == "read_file" and description
    assert parameters["required"] == ["path"]


def test_unknown_tool_raises(registry: ToolRegistry) -> None:
    with pytest.raises(UnknownTool) as info:
        registry.get("rm_rf")
    assert isinstance(info.value, ToolError)
    with pytest.raises(UnknownTool):
        registry.specs_for(["read_file", "nope"])


def test_duplicate_tools_are_refused(registry: ToolRegistry) -> None:
    with pytest.raises(ValueError, match="twice"):
        ToolRegistry([registry.get("read_file"), registry.get("read_file")])


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("write_file", {"path": "a"}, "missing required argument(s): ['content']"),
        (
            "write_file",
            {"path": "a", "content": 1},
            "'content' must be of type string, not integer",
        ),
        ("read_file", {"path": True}, "'path' must be of type string, not boolean"),
        ("read_file", {"path": "a", "mode": "w"}, "unexpected argument(s): ['mode']"),
        ("read_file", ["a"], "arguments must be a JSON object"),
        ("execute_command", {"command": ["ls"]}, "must be of type string, not array"),
        ("list_files", {"path": None}, "must be of type string, not null"),
    ],
)
def test_validate_refuses_bad_arguments_with_a_clear_message(
    registry: ToolRegistry, tool: str, arguments: object, message: str
) -> None:
    with pytest.raises(InvalidToolArguments) as info:
        registry.validate(tool, arguments)
    assert info.value.message.startswith(f"{tool}: ")
    assert message in info.value.message


async def test_arguments_are_validated_before_running(
    workspace: Workspace, registry: ToolRegistry
) -> None:
    with pytest.raises(InvalidToolArguments):
        await registry.run("write_file", workspace, {"path": "a.txt", "content": 5})
    assert not (workspace.root / "a.txt").exists()
