"""The narrow interface domain services depend on to emit events."""

from __future__ import annotations

from typing import Protocol

from telemetry.events import TelemetryEvent


class EventSink(Protocol):
    """Anything that records catalogue events; :class:`telemetry.Telemetry` is the real one.

    ``emit`` is synchronous, cheap, and never raises into the caller.
    """

    def emit(self, event: TelemetryEvent) -> None: ...
