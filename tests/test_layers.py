"""The layer rules of docs/architecture.md, read from the import statements of ``src/``:
``telemetry`` never imports ``agent_runtime``; ``agent_runtime`` reaches telemetry only
through its front door and never OpenTelemetry itself; only the HTTP
adapter and the entry points know FastAPI; and no import circle exists."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

HTTP_MODULES = ("agent_runtime.api", "agent_runtime.app", "agent_runtime.cli", "telemetry.asgi")
"""The HTTP adapter, the entry points, and the layer's ASGI instrumentation (its server span
and correlation headers, which the adapter installs)."""
HTTP_PACKAGES = ("fastapi", "starlette", "uvicorn")


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module."""
    target: str
    """What it imports: a module, or ``package.name`` for ``from package import name``."""
    top_level: bool
    """Executed when the module is imported (not inside a function or ``TYPE_CHECKING``)."""


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(module: str, path: Path) -> Iterator[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, id(node) in top)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                yield Import(module, f"{base}.{alias.name}", id(node) in top)


def _all_imports() -> list[Import]:
    return [found for module, path in _modules().items() for found in _imports(module, path)]


def _under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in packages)


def test_telemetry_never_imports_the_service() -> None:
    wrong = [i for i in _all_imports() if _under(i.module, "telemetry")]
    assert wrong, "no import of src/telemetry was read"
    assert [i for i in wrong if _under(i.target, "agent_runtime")] == []


def test_the_service_reaches_telemetry_through_its_front_door_only() -> None:
    front_door = {f"telemetry.{name}" for name in __import__("telemetry").__all__}
    wrong = [
        (i.module, i.target)
        for i in _all_imports()
        if _under(i.module, "agent_runtime")
        and _under(i.target, "telemetry")
        and i.target != "telemetry"
        and i.target not in front_door
    ]
    assert wrong == []


def test_the_service_never_imports_opentelemetry() -> None:
    users = {i.module for i in _all_imports() if _under(i.target, "opentelemetry")}
    assert "telemetry.asgi" in users, "the layer's own OpenTelemetry imports were not read"
    assert sorted(m for m in users if _under(m, "agent_runtime")) == []


def test_only_the_http_adapter_and_the_entry_points_know_fastapi() -> None:
    users = {i.module for i in _all_imports() if _under(i.target, *HTTP_PACKAGES)}
    assert users, "no FastAPI import was read"
    assert sorted(m for m in users if not _under(m, *HTTP_MODULES)) == []


def test_no_import_circle() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for i in _all_imports():
        if not i.top_level:
            continue
        # ``from package import submodule`` imports the submodule; anything else the module.
        target = i.target if i.target in modules else i.target.rpartition(".")[0]
        if target in modules and target != i.module:
            graph[i.module].add(target)
    circles = _strongly_connected(graph)
    assert circles == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other (size > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
