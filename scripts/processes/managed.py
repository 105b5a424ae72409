"""One program as a process: its own process group, environment and log; a health URL
polled until a deadline; stopped by its signal, then SIGKILL; pid files that `make
stack-down` reads."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.processes.config import REPO
from scripts.processes.waiting import ProcessExited, http_ok, wait_until


class ManagedProcess:
    """One program: started in its own process group, polled until healthy, stopped.

    ``env`` is added to this process's environment, or, with ``inherit_env=False``, is the
    whole environment (callers that must keep the outer shell's OTEL_* settings out).
    stdout goes to ``log_path``, stderr too unless ``stderr_path`` names its own file.
    The logs are appended to (a restarted program keeps its history) unless
    ``append_logs=False``. ``pid_file`` (for `make stack`) records the group leader's pid and
    how to stop it (:class:`PidRecord`), so that `down` stops exactly this process and its
    children, the way the program asks to be stopped.

    Most programs are stopped by SIGTERM to their whole group. A server that manages its own
    children (PostgreSQL) is stopped by ``stop_signal`` to the leader alone
    (``stop_leader_only``): the leader tells its children. ``probe`` replaces the HTTP check
    of ``health_url`` for a program that speaks no HTTP (``health_url`` then only names what
    is probed in messages). ``user`` runs the program as that OS user (its own group, no
    supplementary groups), for a program that refuses to run as root.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        health_url: str,
        cwd: Path = REPO,
        pid_file: Path | None = None,
        inherit_env: bool = True,
        stderr_path: Path | None = None,
        append_logs: bool = True,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_leader_only: bool = False,
        probe: Callable[[], bool] | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.stderr_path = stderr_path
        self.health_url = health_url
        self.cwd = cwd
        self.pid_file = pid_file
        self.inherit_env = inherit_env
        self.append_logs = append_logs
        self.stop_signal = stop_signal
        self.stop_leader_only = stop_leader_only
        self.probe = probe
        self.user = user
        self.popen: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        mode = "ab" if self.append_logs else "wb"
        with contextlib.ExitStack() as files:
            stdout = files.enter_context(self.log_path.open(mode))
            stderr = (
                files.enter_context(self.stderr_path.open(mode))
                if self.stderr_path is not None
                else subprocess.STDOUT
            )
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                **run_as(self.user),
            )
        self.returncode = None
        if self.pid_file is not None:
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            record = PidRecord(self.popen.pid, self.stop_signal, self.stop_leader_only)
            self.pid_file.write_text(record.text())

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_healthy(self, timeout: float = 60.0, interval: float = 0.2) -> None:
        """Poll the health URL until it answers 2xx; fail at once if the process exits."""

        def probe() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise ProcessExited(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            if self.probe is not None:
                return self.probe()
            return http_ok(self.health_url, timeout=max(interval, 1.0))

        try:
            wait_until(
                probe, timeout=timeout, what=f"{self.name} at {self.health_url}", interval=interval
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- {self.log_path} ---\n{self.log_tail()}") from None

    def stop(self, timeout: float = 15.0, *, sig: signal.Signals | None = None) -> int | None:
        """The stop signal (``sig``, else :attr:`stop_signal`) to the process group, or to the
        leader alone; SIGKILL to the group if the leader is still there at the deadline.

        Returns the exit code (None when it was never started). The leader is waited for
        directly, not polled, so a caller timing the shutdown measures the process itself.
        """
        if self.popen is None:
            return self.returncode
        if self.popen.poll() is None:
            stop_signal = self.stop_signal if sig is None else sig
            if self.stop_leader_only:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.popen.pid, stop_signal)
            else:
                _signal_group(self.popen.pid, stop_signal)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        return self._forget()

    def kill(self) -> int | None:
        """SIGKILL to the process group, no chance to flush: a crash."""
        if self.popen is None:
            return self.returncode
        if self.popen.poll() is None:  # once reaped, its pid may belong to someone else
            _signal_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        return self._forget()

    def _forget(self) -> int | None:
        assert self.popen is not None
        self.returncode = self.popen.returncode
        self.popen = None
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
        return self.returncode

    def log_tail(self, lines: int = 40) -> str:
        tails = []
        for path in (self.log_path, self.stderr_path):
            if path is None:
                continue
            try:
                text = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            except OSError:
                text = "(no log)"
            tails.append(text if self.stderr_path is None else f"--- {path.name} ---\n{text}")
        return "\n".join(tails)


def start_all(processes: Iterable[ManagedProcess], *, timeout: float = 90.0) -> None:
    """Start each process in order and wait until it is healthy before the next one.

    On a failure, the ones already started are stopped again before the error propagates.
    """
    started: list[ManagedProcess] = []
    try:
        for proc in processes:
            proc.start()
            started.append(proc)
            proc.wait_healthy(timeout=timeout)
    except BaseException:
        stop_all(started)
        raise


def stop_all(processes: Sequence[ManagedProcess]) -> None:
    """Stop in the reverse of the start order (the service before its Collector, ...)."""
    for proc in reversed(processes):
        proc.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """True while any process of the group ``pgid`` still runs (a zombie counts as gone)."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields after the command: state, ppid, pgrp, ...
        if int(stat[2]) == pgid and stat[0] != "Z":
            return True
    return False


@dataclass(frozen=True)
class PidRecord:
    """What a pid file of `make stack` holds: the group leader, and how it asks to be stopped.

    The file's first line is the pid; a second line ``<SIGNAL> leader`` or ``<SIGNAL> group``
    is written only when the program is not stopped by SIGTERM to its group, so the files of
    the other programs keep their one-line form.
    """

    pid: int
    stop_signal: signal.Signals = signal.SIGTERM
    leader_only: bool = False

    def text(self) -> str:
        if self.stop_signal == signal.SIGTERM and not self.leader_only:
            return f"{self.pid}\n"
        target = "leader" if self.leader_only else "group"
        return f"{self.pid}\n{self.stop_signal.name} {target}\n"

    @classmethod
    def read(cls, path: Path) -> PidRecord | None:
        """The record in ``path``; None when it is missing or not one (nothing to stop)."""
        try:
            lines = path.read_text().split("\n")
        except OSError:
            return None
        first = lines[0].strip()
        if not first.isdigit() or int(first) <= 1:
            return None
        how = lines[1].split() if len(lines) > 1 else []
        if not how:
            return cls(int(first))
        try:
            stop_signal = signal.Signals[how[0]]
        except KeyError:
            return None
        return cls(int(first), stop_signal, how[1:] == ["leader"])


def stop_recorded(record: PidRecord, timeout: float = 15.0) -> None:
    """Stop a process group that is not our child (`make stack-down`) as its record says,
    then SIGKILL the group if any of it is still there at the deadline."""
    if record.leader_only:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(record.pid, record.stop_signal)
    else:
        _signal_group(record.pid, record.stop_signal)
    try:
        wait_until(
            lambda: not group_alive(record.pid), timeout=timeout, what=f"process group {record.pid}"
        )
    except TimeoutError:
        _signal_group(record.pid, signal.SIGKILL)


def run_as(user: str | None) -> dict[str, Any]:
    """The keyword arguments of :class:`subprocess.Popen` that run a program as ``user`` (its
    own uid and primary group, no supplementary groups); none for ``None`` (as we are)."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
