"""Where the programs' binaries come from: built from their Go modules (cached), or
Debian's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from scripts.processes.config import REPO


def build(script: str) -> Path:
    """Run scripts/build-<thing>.sh (progress on stderr) and return the binary it printed."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / script)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Path(result.stdout.strip().splitlines()[-1])


def prometheus_binary() -> Path:
    found = shutil.which("prometheus")
    if found is None:
        raise FileNotFoundError(
            "prometheus is not on PATH: run deploy/ci-prereqs.sh (apt-get install prometheus)"
        )
    return Path(found)


def haproxy_binary() -> Path:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if found is None:
        raise FileNotFoundError(
            "haproxy is not on PATH: run deploy/ci-prereqs.sh (apt-get install haproxy)"
        )
    return Path(found)


def service_entry_point() -> Path:
    """`agent-runtime`, the console script beside the running interpreter (`uv run`)."""
    return Path(sys.executable).with_name("agent-runtime")
