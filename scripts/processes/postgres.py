"""A PostgreSQL server of this machine's installation as a process: a cluster of its own,
127.0.0.1 and one port, password authentication, run as ``postgres`` when the caller is
root (initdb and the server refuse root)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from scripts.processes.managed import ManagedProcess, run_as
from scripts.processes.waiting import free_port

POSTGRES_INSTALL_ROOT = Path("/usr/lib/postgresql")
# The programs of an installation this module runs (Debian: postgresql-NN and its client).
POSTGRES_TOOLS = ("initdb", "postgres", "pg_isready", "psql")
# initdb and postgres refuse to run as root; as root they run as the user Debian's package makes.
POSTGRES_OS_USER = "postgres"
POSTGRES_ROLE = "agent_runtime"
POSTGRES_DATABASE = "agent_runtime"
POSTGRES_STACK_PORT = 5432
# pg_ctl's shutdown modes, as the signal each sends to the postmaster.
POSTGRES_STOP_SIGNALS = {
    "smart": signal.SIGTERM,  # waits for every client to disconnect
    "fast": signal.SIGINT,  # ends the sessions, rolls back open transactions, checkpoints
    "immediate": signal.SIGQUIT,  # no checkpoint: the next start runs crash recovery
}
# sun_path holds 108 bytes; the socket is <dir>/.s.PGSQL.<port>.
_SOCKET_PATH_MAX = 107


def postgres_bindir(root: Path = POSTGRES_INSTALL_ROOT) -> Path:
    """The newest ``<root>/<major>/bin`` that holds the server and its client (Debian keeps
    them off PATH); else the directory of an ``initdb`` on PATH that does."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for bindir in root.glob("*/bin"):
        version = bindir.parent.name.split(".")  # "16", or "9.6" before PostgreSQL 10
        if all(part.isdigit() for part in version) and _has_postgres_tools(bindir):
            found.append((tuple(int(part) for part in version), bindir))
    if found:
        return max(found)[1]
    on_path = shutil.which("initdb")
    if on_path is not None and _has_postgres_tools(Path(on_path).resolve().parent):
        return Path(on_path).resolve().parent
    raise FileNotFoundError(
        f"no PostgreSQL server under {root}/*/bin nor on PATH: run deploy/ci-prereqs.sh "
        "(apt-get install postgresql)"
    )


def _has_postgres_tools(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in POSTGRES_TOOLS)


def postgres_os_user() -> str | None:
    """Who runs initdb and the server: ``postgres`` when we are root, else we (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        raise FileNotFoundError(
            f"running as root, and there is no {POSTGRES_OS_USER!r} user to run PostgreSQL as "
            "(initdb refuses root; Debian's postgresql package creates that user)"
        ) from None
    return POSTGRES_OS_USER


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: what may be printed or logged."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass
class PostgresServer:
    """One PostgreSQL server of this machine's installation, on a cluster of its own.

    It listens on 127.0.0.1:``port`` only, with its Unix socket inside its data directory
    (never in the system's /var/run/postgresql), and asks every client for the password of
    its one role, ``agent_runtime`` (a superuser: it creates and drops the tests'
    databases). :meth:`url` is the ``DATABASE_URL`` the service reads. The admin helpers
    (:meth:`psql`, :meth:`create_database`, ...) run the installation's own ``psql`` over the
    same TCP address, with the password in the environment, never on a command line.

    Made by :func:`postgres_server`; the server process itself is :attr:`process`, a
    :class:`ManagedProcess` stopped by a signal to the postmaster alone (pg_ctl's modes), so
    `make stack-down` stops it as cleanly as :meth:`stop` does.
    """

    bindir: Path
    data_dir: Path
    port: int
    password: str
    process: ManagedProcess
    os_user: str | None = None
    role: str = POSTGRES_ROLE
    database: str = POSTGRES_DATABASE
    temporary: bool = False

    def url(self, database: str | None = None) -> str:
        """``postgresql://agent_runtime:<password>@127.0.0.1:<port>/<database>``."""
        name = self.database if database is None else database
        quote = urllib.parse.quote
        return (
            f"postgresql://{quote(self.role, safe='')}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(name, safe='')}"
        )

    @property
    def running(self) -> bool:
        return self.process.running

    def accepting(self) -> bool:
        """True when the server accepts connections (pg_isready, no authentication)."""
        result = subprocess.run(
            [
                str(self.bindir / "pg_isready"),
                "--quiet",
                "--host=127.0.0.1",
                f"--port={self.port}",
                "--timeout=2",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it accepts connections, then create
        :attr:`database` if the cluster has none yet.

        After a crash (:meth:`kill`, or ``immediate`` mode) the server runs crash recovery
        first, within the same deadline. A server that exits while starting (its port taken,
        a broken data directory) fails at once with the tail of its log.
        """
        if self.running:
            raise RuntimeError(f"PostgreSQL on port {self.port} is already running")
        self.process.start()
        try:
            self.process.wait_healthy(timeout=timeout, interval=0.05)
            if not self.database_exists(self.database):
                self.create_database(self.database)
        except BaseException:
            self.process.kill()
            raise

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> int | None:
        """Shut down in one of pg_ctl's modes; SIGKILL to its processes at the deadline.

        ``fast`` (the default) ends every session, rolls back their open transactions and
        writes a checkpoint: what a restart under load needs. Returns the postmaster's exit
        code (0 after a clean shutdown).
        """
        return self.process.stop(timeout=timeout, sig=POSTGRES_STOP_SIGNALS[mode])

    def kill(self) -> int | None:
        """SIGKILL to the postmaster and every backend: a crash. The next :meth:`start` runs
        crash recovery; every transaction committed before it is still there."""
        return self.process.kill()

    def restart(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """Stop (``mode``) and start again, on the same port and data directory."""
        self.stop(mode=mode, timeout=timeout)
        self.start(timeout=timeout)

    def psql(
        self,
        sql: str,
        *,
        database: str = "postgres",
        variables: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> str:
        """Run ``sql`` as the role in ``database``; its rows, unaligned, ``|`` between values.

        Values go in as psql variables (``:'name'`` a literal, ``:"name"`` an identifier),
        which psql quotes, never by formatting them into ``sql``. A failing statement raises
        :class:`subprocess.CalledProcessError` with psql's message (which never holds the
        password)."""
        argv = [
            str(self.bindir / "psql"),
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--set=ON_ERROR_STOP=1",
            "--host=127.0.0.1",
            f"--port={self.port}",
            f"--username={self.role}",
            f"--dbname={database}",
        ]
        argv += [f"--set={key}={value}" for key, value in (variables or {}).items()]
        result = subprocess.run(
            argv,
            # From standard input, where psql substitutes variables (it does not in -c).
            input=sql,
            env={
                **os.environ,
                "PGPASSWORD": self.password,
                "PGCONNECT_TIMEOUT": str(max(2, int(timeout))),
            },
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return result.stdout.strip()

    def database_exists(self, name: str) -> bool:
        found = self.psql(
            "SELECT 1 FROM pg_database WHERE datname = :'name'", variables={"name": name}
        )
        return found == "1"

    def create_database(self, name: str, *, template: str = "template0") -> None:
        """An empty database (``template0`` holds nothing of ours), owned by the role."""
        self.psql(
            'CREATE DATABASE :"name" TEMPLATE :"template" OWNER :"role"',
            variables={"name": name, "template": template, "role": self.role},
        )

    def drop_database(self, name: str) -> None:
        """Drop it, ending any session still connected to it (a pool a test left open)."""
        self.psql('DROP DATABASE IF EXISTS :"name" WITH (FORCE)', variables={"name": name})

    def remove(self) -> None:
        """Stop the server if it runs, and delete its cluster if it was made for one run."""
        self.stop()
        if self.temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def postgres_server(
    state_dir: Path,
    *,
    port: int | None = None,
    bindir: Path | None = None,
    durable: bool = True,
    temporary: bool = False,
    max_connections: int = 200,
    pid_file: Path | None = None,
) -> PostgresServer:
    """A PostgreSQL server for ``state_dir``, its cluster initialised, not yet started.

    The cluster lives in ``state_dir/postgres`` and its role's password in
    ``state_dir/postgres.password`` (0600), so a later call with the same ``state_dir`` finds
    both again (`make stack` keeps its data between runs). When we are root, the server runs
    as ``postgres``, which must reach its data directory: if it cannot reach
    ``state_dir/postgres`` (pytest's temporary directories are root's alone), the cluster
    goes to a directory of the system's temporary directory named after ``state_dir``.
    ``temporary`` clusters are deleted by :meth:`PostgresServer.remove`.

    ``durable=False`` turns off fsync and full-page writes: a test server's data then
    survives a crash of the server (every commit is still written before it is
    acknowledged, so nothing acknowledged is lost when the server is killed), not a crash
    of the machine. Keep it on where timings are compared (benchmarks) and for data that
    matters. ``port`` defaults to a free one.
    """
    bindir = postgres_bindir() if bindir is None else bindir
    os_user = postgres_os_user()
    state_dir.mkdir(parents=True, exist_ok=True)
    data_dir = _postgres_data_dir(state_dir, os_user)
    password_file = state_dir / "postgres.password"
    if (data_dir / "PG_VERSION").exists():
        if not password_file.exists():
            raise FileNotFoundError(
                f"{data_dir} holds a cluster whose password file {password_file} is gone: "
                "delete the cluster to start afresh"
            )
        password = password_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(18)
        _initdb(bindir, data_dir, password, os_user, durable=durable)
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n")
    port = free_port() if port is None else port
    socket_dir = str(data_dir) if len(f"{data_dir}/.s.PGSQL.{port}") <= _SOCKET_PATH_MAX else ""
    settings = {
        "listen_addresses": "127.0.0.1",
        # No socket in /var/run/postgresql (the system's, perhaps another server's); none at
        # all when the data directory's path is too long for one (clients here use TCP).
        "unix_socket_directories": socket_dir,
        "max_connections": str(max_connections),
    }
    if not durable:
        settings |= {"fsync": "off", "full_page_writes": "off"}
    argv = [str(bindir / "postgres"), "-D", str(data_dir), "-p", str(port)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    server = PostgresServer(
        bindir=bindir,
        data_dir=data_dir,
        port=port,
        password=password,
        process=ManagedProcess(
            "postgres",
            argv,
            env={},
            log_path=state_dir / "postgres.log",
            health_url=f"postgresql://127.0.0.1:{port}",
            cwd=data_dir,
            pid_file=pid_file,
            stop_signal=POSTGRES_STOP_SIGNALS["fast"],
            stop_leader_only=True,
            user=os_user,
        ),
        os_user=os_user,
        temporary=temporary,
    )
    server.process.probe = server.accepting
    return server


def _postgres_data_dir(state_dir: Path, os_user: str | None) -> Path:
    preferred = state_dir / "postgres"
    if os_user is None:
        return preferred
    entry = pwd.getpwnam(os_user)
    if not preferred.exists():
        preferred.mkdir(mode=0o700)
        os.chown(preferred, entry.pw_uid, entry.pw_gid)
    if _usable_by(os_user, preferred):
        return preferred
    if not any(preferred.iterdir()):
        preferred.rmdir()
    # Named after the state directory, so the same one finds its cluster again; made here or
    # refused (a directory someone else made, or a link, could be anything).
    key = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    fallback = Path(tempfile.gettempdir()) / f"agent-runtime-postgres-{key}"
    with contextlib.suppress(FileExistsError):
        fallback.mkdir(mode=0o700)
        os.chown(fallback, entry.pw_uid, entry.pw_gid)
    info = fallback.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != entry.pw_uid or info.st_mode & 0o077:
        raise PermissionError(f"{fallback} is not a private directory of {os_user!r}")
    if not _usable_by(os_user, fallback):
        raise PermissionError(f"{os_user!r} cannot write {preferred} nor {fallback}")
    return fallback


def _usable_by(os_user: str, path: Path) -> bool:
    """Whether ``os_user`` can reach and write ``path`` (every parent searchable)."""
    result = subprocess.run(
        ["test", "-w", str(path), "-a", "-x", str(path)],
        stdin=subprocess.DEVNULL,
        timeout=10,
        check=False,
        **run_as(os_user),
    )
    return result.returncode == 0


def _initdb(
    bindir: Path, data_dir: Path, password: str, os_user: str | None, *, durable: bool
) -> None:
    """A new cluster in ``data_dir``: the role with ``password``, password authentication for
    every connection (TCP and socket), UTF-8 with the C locale (the same on every machine)."""
    # initdb reads the password from a file the server's user can open.
    fd, pwfile = tempfile.mkstemp(prefix="agent-runtime-pwfile-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        if os_user is not None:
            entry = pwd.getpwnam(os_user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        argv = [
            str(bindir / "initdb"),
            f"--pgdata={data_dir}",
            f"--username={POSTGRES_ROLE}",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        if not durable:
            argv.append("--no-sync")
        result = subprocess.run(
            argv,
            cwd=data_dir.parent,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **run_as(os_user),
        )
    finally:
        os.unlink(pwfile)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stderr[-2000:]}")
