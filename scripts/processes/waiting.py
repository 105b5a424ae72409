"""Waiting for something with a deadline, and free ports on 127.0.0.1."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ProcessExited(RuntimeError):
    """The program being waited for exited: waiting longer cannot help."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
) -> T:
    """Call ``probe`` until it returns something other than None/False, or fail at the deadline.

    Polling with a deadline is the only synchronisation used: no fixed sleeps. A probe that
    raises is asked again (a process that starts refuses connections), unless it raises
    :class:`ProcessExited`.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if result is not None and result is not False:
                return result
        except ProcessExited:
            raise
        except Exception as exc:  # probes may fail while a process starts
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortPool:
    """Free ports, each handed out once, so that one stack's programs never share one."""

    def __init__(self) -> None:
        self._given: set[int] = set()

    def take(self) -> int:
        while True:
            port = free_port()
            if port not in self._given:
                self._given.add(port)
                return port


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (local)
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False
