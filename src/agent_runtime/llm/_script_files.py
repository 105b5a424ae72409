"""The files the offline scripted coder writes: a source file, and the pytest module it
writes for a file the transcript shows.

Part of the scripted model (:mod:`agent_runtime.llm._script` decides when each is written);
apart because building a test module from a file's source is a small parser of its own.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from collections.abc import Mapping

PY_PATH = re.compile(r"[\w./-]*\w\.py\b")
"""A ``*.py`` path in a message."""

SORT_SOURCE = '''"""Sorting helpers, written by the scripted coder agent."""


def sort_numbers(values: list[int]) -> list[int]:
    """Return a new list with the values in ascending order."""
    return sorted(values)
'''

GENERIC_SOURCE = '''"""Written by the scripted coder agent."""


def main() -> None:
    """Print a greeting so the change is easy to see."""
    print("hello from the scripted coder")


if __name__ == "__main__":
    main()
'''


def tests_target(user_text: str, sources: Mapping[str, str]) -> tuple[str, str] | None:
    """The file to test: a known ``*.py`` the message names, else the latest known one."""
    for path in reversed(PY_PATH.findall(user_text)):
        if path in sources:
            return path, sources[path]
    for path in reversed(list(sources)):
        if not is_test_file(path):
            return path, sources[path]
    return None


def is_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def tests_path(path: str) -> str:
    folder, _, name = path.rpartition("/")
    return f"{folder}/test_{name}" if folder else f"test_{name}"


def tests_module(path: str, source: str) -> str | None:
    """pytest tests for ``source``'s public functions, beside it (pytest puts a test file's
    folder on ``sys.path``, so the module imports by its name); None if there are none."""
    module = path.rsplit("/", 1)[-1].removesuffix(".py")
    if not module.isidentifier() or keyword.iskeyword(module):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    functions = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    ]
    if not functions:
        return None
    tests = [test for function in functions for test in _tests_of(function)]
    imports = ["import pytest\n\n"] if any("capsys" in test for test in tests) else []
    names_imported = ", ".join(function.name for function in functions)
    header = f'"""Tests for {path}, written by the scripted coder agent."""\n\n'
    return (
        header
        + "".join(imports)
        + f"from {module} import {names_imported}\n\n\n"
        + ("\n\n".join(tests))
    )


def _tests_of(function: ast.FunctionDef) -> list[str]:
    """What can be checked from the source alone: a sorting function sorts, a function
    without parameters runs (and prints what it says it prints), anything else exists."""
    name = function.name
    arguments = function.args
    required = len(arguments.posonlyargs) + len(arguments.args) - len(arguments.defaults)
    required += sum(default is None for default in arguments.kw_defaults)
    if "sort" in name.lower() and required == 1:
        return [
            f"def test_{name}_orders_values_ascending() -> None:\n"
            f"    assert {name}([3, 1, 2]) == [1, 2, 3]\n",
            f"def test_{name}_keeps_duplicates() -> None:\n"
            f"    assert {name}([2, 1, 2]) == [1, 2, 2]\n",
            f"def test_{name}_of_an_empty_list_is_empty() -> None:\n    assert {name}([]) == []\n",
        ]
    if required == 0:
        printed = _printed_text(function)
        check = (
            f"    assert {json.dumps(printed)} in capsys.readouterr().out\n"
            if printed
            else '    assert capsys.readouterr().err == ""\n'
        )
        return [
            f"def test_{name}_runs(capsys: pytest.CaptureFixture[str]) -> None:\n"
            f"    {name}()\n{check}"
        ]
    return [f"def test_{name}_is_callable() -> None:\n    assert callable({name})\n"]


def _printed_text(function: ast.FunctionDef) -> str | None:
    """The first constant text the function passes to ``print``, if any."""
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            return node.args[0].value
    return None
