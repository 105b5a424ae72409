"""How a real failure is written on a span: status ERROR, ``error.type`` and the exception.

Only real failures come here (an exception, a provider error); outcomes such as a human's
REJECT, an approval timeout or a disconnect end their spans normally, with an outcome
attribute. Every span object of :mod:`telemetry._runs` fails through :func:`fail_span`, so
a failure looks the same on every span it crosses and on the metrics (:func:`error_type`).
"""

from __future__ import annotations

import traceback

from opentelemetry.trace import Span, Status, StatusCode

from telemetry import names as n
from telemetry.redaction import scrub


def error_type(exc: BaseException) -> str:
    """``error.type`` for an exception: its qualified class name (semconv's advice)."""
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def fail_span(span: Span, exc: BaseException) -> None:
    """Status ERROR, ``error.type`` and the exception event. Provider errors echo keys: the
    message and stack trace are scrubbed and truncated."""
    span.record_exception(
        exc,
        attributes={
            n.EXCEPTION_MESSAGE: scrub(str(exc))[:512],
            n.EXCEPTION_STACKTRACE: scrub("".join(traceback.format_exception(exc)))[-4096:],
        },
    )
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    span.set_attribute(n.ERROR_TYPE, error_type(exc))
