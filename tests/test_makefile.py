"""`make help` lists every target of the Makefile and of the deploy/*.mk files it includes,
each with its text, so that no target hides from a newcomer."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(*args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout


def _targets() -> set[str]:
    """Every target make knows from the repository's makefiles (its own database, read
    without running anything), minus its special targets and the makefiles themselves."""
    database = _make("--print-data-base", "--question", "--no-builtin-rules", "help")
    files = database.split("\n# Files\n", 1)[1]
    targets: set[str] = set()
    previous = ""
    for line in files.splitlines():
        match = re.match(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*):(?!=)", line)
        if match and previous != "# Not a target:":
            targets.add(match.group(1))
        previous = line
    return {t for t in targets if t != "Makefile" and not t.endswith(".mk")}


def _listed() -> dict[str, str]:
    lines = _make("help").splitlines()
    listed = {}
    for line in lines:
        match = re.match(r"^  make (\S+) +(\S.*)$", line)
        assert match, f"not a help line: {line!r}"
        listed[match.group(1)] = match.group(2)
    return listed


def test_every_target_is_listed_with_its_text() -> None:
    targets = _targets()
    listed = _listed()
    assert {"help", "demo", "test", "serve", "lint", "stack", "soak", "bench"} <= targets
    assert sorted(targets - listed.keys()) == [], "targets without a `## ` text in their rule"
    assert sorted(listed.keys() - targets) == []


def test_help_is_the_default_goal() -> None:
    assert _make() == _make("help")
