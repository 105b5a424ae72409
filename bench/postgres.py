"""PostgreSQL for the benchmarks: one real server for the benchmarks of a run that need one,
started by :func:`scripts.processes.postgres_server` (the module the tests and `make stack`
start theirs with), and the CPU its processes spend.

The server keeps PostgreSQL's durable defaults (``fsync``, ``synchronous_commit`` and
``full_page_writes`` on: a commit returns once its WAL reached the disk), as a real
deployment runs it; the tests' server turns ``fsync`` off, which would flatter every commit.
When this machine has no PostgreSQL installation, :func:`server` yields ``None`` and says
that the PostgreSQL rows are skipped (`deploy/ci-prereqs.sh` installs it).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts import processes
from scripts.processes import PostgresServer

__all__ = ["PostgresServer", "server", "server_cpu_s"]


@contextmanager
def server() -> Iterator[PostgresServer | None]:
    """A running server on a free port of 127.0.0.1 with a cluster of its own, stopped and
    deleted at the end; ``None`` (after printing why) when PostgreSQL is not installed."""
    try:
        bindir = processes.postgres_bindir()
        processes.postgres_os_user()
    except FileNotFoundError as exc:
        print(f"  (PostgreSQL rows skipped: {exc})", flush=True)
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bench-postgres-") as folder:
        found = processes.postgres_server(Path(folder), bindir=bindir, durable=True, temporary=True)
        found.start()
        try:
            yield found
        finally:
            found.remove()


def server_cpu_s(postmaster_pid: int) -> float:
    """CPU time so far of every process of the server: the postmaster and its children (the
    connections' backends, the WAL writer, the checkpointer...: PostgreSQL starts them all
    itself, each in a session of its own, so they are found by parent, not by group).

    Read from each process's ``schedstat`` (nanoseconds on a CPU, user and system; the
    server's processes are single-threaded), not ``stat``, whose 10 ms ticks are coarser
    than a batch of commits. Ended processes are not counted: read it around work whose
    connections stay open."""
    total_ns = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if int(entry.name) != postmaster_pid:
                with open(f"/proc/{entry.name}/stat", encoding="ascii") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                if parent != postmaster_pid:
                    continue
            with open(f"/proc/{entry.name}/schedstat", encoding="ascii") as schedstat:
                total_ns += int(schedstat.read().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total_ns / 1e9
