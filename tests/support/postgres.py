"""PostgreSQL for the tests: one real server per test session, one empty database per test.

``postgres_server`` (session) starts a server of this machine's installation with
:func:`scripts.processes.postgres_server` (the module `make stack` uses): a cluster of its
own in a temporary directory, 127.0.0.1 and a free port only, password authentication, run
as ``postgres`` when the tests run as root (initdb and the server refuse root). It is
skipped only when no PostgreSQL binaries exist at all; `deploy/ci-prereqs.sh` installs them,
so in CI it always runs, and a server that exists but does not start fails the tests.

``postgres_url`` (function) creates a fresh database from ``template0`` for one test and
returns its URL, the ``DATABASE_URL`` the service reads:
``postgresql://agent_runtime:<password>@127.0.0.1:<port>/test_<hex>``. The database is
dropped after the test, with any connection the test left open. ``database_url`` runs a test
once per backend: ``None`` (the embedded SQLite default) and a ``postgres_url``.

A test may stop, restart or kill the session's server with :func:`stop`, :func:`start`,
:func:`restart` and :func:`kill` (or make it unreachable for a block with
:func:`unreachable`); whatever a test leaves, the next test finds the server running,
because ``postgres_url`` starts it again before dropping its database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from scripts import processes
from scripts.processes import PostgresServer


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session, running, stopped and deleted at the end."""
    try:
        bindir = processes.postgres_bindir()
    except FileNotFoundError as exc:
        pytest.skip(f"PostgreSQL is not installed: {exc}")
    server = processes.postgres_server(
        tmp_path_factory.mktemp("postgres"), bindir=bindir, durable=False, temporary=True
    )
    try:
        server.start()
        yield server
    finally:
        server.remove()


@contextmanager
def fresh_database(server: PostgresServer) -> Iterator[str]:
    """An empty database of its own on ``server`` (its URL), dropped at the end."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    server.create_database(name)
    try:
        yield server.url(name)
    finally:
        if not server.running:  # the test stopped or killed it: the next one needs it
            server.start()
        server.drop_database(name)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of an empty database made for this test alone."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Each backend in turn: None (``DATABASE_URL`` unset: the embedded SQLite store in the
    data directory), then a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("postgres_url")
    assert isinstance(url, str)
    return url


def stop(server: PostgresServer, *, mode: str = "fast", timeout: float = 30.0) -> None:
    """Shut the server down (pg_ctl's ``smart``, ``fast`` or ``immediate``): from then on it
    refuses connections, as an unreachable database does."""
    server.stop(mode=mode, timeout=timeout)


def start(server: PostgresServer, *, timeout: float = 60.0) -> None:
    """Start it again on the same port and data directory; returns once it accepts
    connections."""
    server.start(timeout=timeout)


def restart(server: PostgresServer, *, mode: str = "fast", timeout: float = 60.0) -> None:
    """Stop (fast by default: every session is ended, open transactions roll back) and start
    on the same port and data directory: a database restart under load."""
    server.restart(mode=mode, timeout=timeout)


def kill(server: PostgresServer) -> None:
    """SIGKILL to the server and its backends (a crash); :func:`start` runs crash recovery."""
    server.kill()


@contextmanager
def unreachable(server: PostgresServer, *, mode: str = "fast") -> Iterator[None]:
    """The server is down inside the block and running again after it."""
    stop(server, mode=mode)
    try:
        yield
    finally:
        if not server.running:
            start(server)


def unreachable_url(server: PostgresServer) -> str:
    """A URL like ``server``'s whose port nothing listens on: a database that is not there,
    without stopping the session's server."""
    url = server.url()
    return url.replace(f"@127.0.0.1:{server.port}/", f"@127.0.0.1:{processes.free_port()}/")
