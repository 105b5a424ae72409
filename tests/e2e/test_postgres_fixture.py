"""The PostgreSQL fixtures of tests/support/postgres.py and the server behind them
(scripts/processes/, which `make stack` uses too), tried as the store's tests will use
them: through the URL alone, with the installation's own client (psql), never through the
helpers under test.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
from scripts import processes
from scripts.processes import PostgresServer, wait_until
from tests.support.postgres import (
    fresh_database,
    kill,
    restart,
    start,
    unreachable,
    unreachable_url,
)


def _client_env() -> dict[str, str]:
    """No PG* variable of the outer shell: the URL alone says where and who."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    return {**env, "PGCONNECT_TIMEOUT": "5"}


def _psql(server: PostgresServer, url: str, sql: str) -> subprocess.CompletedProcess[str]:
    """``sql`` through a client that knows nothing but ``url``."""
    return subprocess.run(
        [str(server.bindir / "psql"), "--no-psqlrc", "-At", "-v", "ON_ERROR_STOP=1", url],
        input=sql,
        env=_client_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def query(server: PostgresServer, url: str, sql: str) -> str:
    result = _psql(server, url, sql)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _database(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


def test_the_url_reaches_an_empty_database_of_its_own(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    parts = urllib.parse.urlsplit(postgres_url)
    assert (parts.scheme, parts.hostname, parts.port) == (
        "postgresql",
        "127.0.0.1",
        postgres_server.port,
    )
    assert parts.username == "agent_runtime" and parts.password
    answer = query(
        postgres_server,
        postgres_url,
        "SELECT current_user, current_database(), host(inet_server_addr()), "
        "inet_server_port(), (SELECT count(*) FROM pg_class WHERE relnamespace = "
        "'public'::regnamespace)",
    )
    assert answer == f"agent_runtime|{_database(postgres_url)}|127.0.0.1|{parts.port}|0"
    assert _database(postgres_url) != postgres_server.database


def test_a_wrong_password_is_refused(postgres_server: PostgresServer, postgres_url: str) -> None:
    parts = urllib.parse.urlsplit(postgres_url)
    wrong = postgres_url.replace(f":{parts.password}@", ":not-the-password@")
    result = _psql(postgres_server, wrong, "SELECT 1")
    assert result.returncode != 0
    assert "password authentication failed" in result.stderr


def test_two_databases_are_isolated_and_each_is_dropped(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    query(postgres_server, postgres_url, "CREATE TABLE t (v text); INSERT INTO t VALUES ('a')")
    with fresh_database(postgres_server) as other:
        assert other != postgres_url
        assert query(postgres_server, other, "SELECT to_regclass('public.t') IS NULL") == "t"
        query(postgres_server, other, "CREATE TABLE t (v text); INSERT INTO t VALUES ('b')")
        assert query(postgres_server, other, "SELECT v FROM t") == "b"
        assert query(postgres_server, postgres_url, "SELECT v FROM t") == "a"
    assert not postgres_server.database_exists(_database(other))
    assert postgres_server.database_exists(_database(postgres_url))


def test_a_database_is_dropped_even_with_a_connection_left_open(
    postgres_server: PostgresServer,
) -> None:
    client: subprocess.Popen[bytes] | None = None
    try:
        with fresh_database(postgres_server) as url:
            name = _database(url)
            # A client that stays connected, as a pool a test forgot to close would.
            psql = str(postgres_server.bindir / "psql")
            client = subprocess.Popen(
                [psql, "--no-psqlrc", "-c", "SELECT pg_sleep(60)", url],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_client_env(),
            )
            wait_until(
                lambda: (
                    postgres_server.psql(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = :'name'",
                        variables={"name": name},
                    )
                    == "1"
                ),
                timeout=15,
                interval=0.05,
                what="the client's session",
            )
        assert not postgres_server.database_exists(name)
        assert client.wait(timeout=15) != 0  # the drop ended its session
    finally:
        if client is not None:
            client.kill()
            client.wait(timeout=10)


def test_restart_keeps_committed_data_port_and_url(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    query(postgres_server, postgres_url, "CREATE TABLE t (v int); INSERT INTO t VALUES (7)")
    pid, port = postgres_server.process.pid, postgres_server.port
    began = time.monotonic()
    restart(postgres_server)
    took = time.monotonic() - began
    assert postgres_server.process.pid != pid  # a new postmaster
    assert postgres_server.port == port
    assert query(postgres_server, postgres_url, "SELECT v FROM t") == "7"
    assert took < 30


def test_a_stopped_server_refuses_connections_until_it_starts_again(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    with unreachable(postgres_server):
        assert not postgres_server.running
        assert not postgres_server.accepting()
        result = _psql(postgres_server, postgres_url, "SELECT 1")
        assert result.returncode != 0
        assert "Connection refused" in result.stderr
    assert query(postgres_server, postgres_url, "SELECT 1") == "1"


def test_a_killed_server_recovers_what_was_committed(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    query(postgres_server, postgres_url, "CREATE TABLE t (v int); INSERT INTO t VALUES (9)")
    kill(postgres_server)
    assert not postgres_server.accepting()
    start(postgres_server)
    assert query(postgres_server, postgres_url, "SELECT v FROM t") == "9"
    log = postgres_server.process.log_path.read_text()
    assert "database system was interrupted" in log  # crash recovery ran: it was a crash


def test_an_unreachable_url_is_refused(postgres_server: PostgresServer) -> None:
    url = unreachable_url(postgres_server)
    assert urllib.parse.urlsplit(url).port != postgres_server.port
    result = _psql(postgres_server, url, "SELECT 1")
    assert result.returncode != 0
    assert "Connection refused" in result.stderr


def test_the_server_never_runs_as_root(postgres_server: PostgresServer) -> None:
    status = Path(f"/proc/{postgres_server.process.pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    expected = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert uid == expected != 0


def test_the_printed_url_hides_the_password(postgres_server: PostgresServer) -> None:
    shown = processes.redact_url(postgres_server.url())
    assert postgres_server.password not in shown
    assert shown == f"postgresql://agent_runtime:***@127.0.0.1:{postgres_server.port}/agent_runtime"
    assert processes.redact_url("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


def test_database_url_is_each_backend_in_turn(
    database_url: str | None, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["database_url"] == "sqlite":
        assert database_url is None
    else:
        assert database_url is not None and database_url.startswith("postgresql://")


def test_stack_down_stops_the_server_in_fast_mode(tmp_path: Path) -> None:
    """`make stack-down` knows PostgreSQL only by its pid file, which says how to stop it."""
    pid_file = tmp_path / "postgres.pid"
    server = processes.postgres_server(
        tmp_path / "state", durable=False, temporary=True, pid_file=pid_file
    )
    try:
        server.start()
        record = processes.PidRecord.read(pid_file)
        assert record == processes.PidRecord(server.process.pid, signal.SIGINT, True)
        processes.stop_recorded(record, timeout=30)
        assert not processes.group_alive(record.pid)
        assert "received fast shutdown request" in server.process.log_path.read_text()
    finally:
        server.remove()


def test_the_newest_complete_installation_is_chosen(tmp_path: Path) -> None:
    def install(version: str, tools: tuple[str, ...] = processes.POSTGRES_TOOLS) -> Path:
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        for tool in tools:
            (bindir / tool).touch(mode=0o755)
        return bindir

    install("9.6")
    fifteen = install("15")
    install("16", tools=("initdb", "postgres"))  # a server without its client
    assert processes.postgres_bindir(tmp_path) == fifteen
    (tmp_path / "16" / "bin" / "psql").touch(mode=0o755)
    (tmp_path / "16" / "bin" / "pg_isready").touch(mode=0o755)
    assert processes.postgres_bindir(tmp_path) == tmp_path / "16" / "bin"
