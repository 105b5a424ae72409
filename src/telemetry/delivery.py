"""What the log pipeline tells the audit outbox: which records reached the Collector."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

__all__ = ["AuditDelivery"]

_log = logging.getLogger(__name__)


class AuditDelivery:
    """What the log pipeline tells the audit outbox: which records reached the Collector,
    and whether shipping works at all, for the re-send policy.

    One is made with the providers (:func:`telemetry.configure`) and handed to the log
    exporter (which reports) and to the application's outbox (which listens).
    ``enabled`` is False when no log exporter exists (``OTEL_LOGS_EXPORTER=none``, SDK
    disabled): re-sending would only feed a no-op. ``healthy`` is False after a failed
    export: while the Collector is down, re-sending the whole backlog every cycle only
    multiplies drops, so the outbox sends a small probe batch instead.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.healthy = True
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Sequence[str]], None]] = []

    def report_failure(self) -> None:
        """Called by the log exporter when a batch did not reach the Collector."""
        self.healthy = False

    def acknowledge(self, record_ids: Sequence[str]) -> None:
        """Called by the log exporter once a batch reached the Collector."""
        self.healthy = True
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(record_ids)
            except Exception:  # an acknowledgement must never break the exporter thread
                _log.exception("audit acknowledgement failed")

    def listen(self, listener: Callable[[Sequence[str]], None]) -> None:
        """Call ``listener`` with the record ids of every acknowledged batch."""
        with self._lock:
            self._listeners.append(listener)

    def stop_listening(self, listener: Callable[[Sequence[str]], None]) -> None:
        with self._lock:
            self._listeners = [known for known in self._listeners if known != listener]
