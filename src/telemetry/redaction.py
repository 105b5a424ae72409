"""Make text safe to export: secrets scrubbed, length bounded.

The one scrubber of the project: captured content (with content capture on; with it off
nothing but lengths and hashes leaves the process), exception messages and stack traces on
spans, and the service's own error texts (a provider's error that echoes its key). Patterns
cover the shapes that leak in practice: provider API keys (``sk-…`` and friends), bearer and
JWT tokens, ``password=`` / ``api_key: …`` assignments, private key blocks, and URL
credentials; a caller that knows its secrets (the configured API key) passes them too, and
they are masked wherever they appear, whatever their shape. It errs on the side of masking:
a word after "bearer" is masked even when it is not a token.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any, Final

REDACTED: Final = "[REDACTED]"

_PATTERNS: Final[tuple[re.Pattern[str], ...]] = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)bearer\s+[^\s\"',}]+"),
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
)
_ASSIGNMENT: Final = re.compile(
    r"(?i)\b([A-Za-z0-9_\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key"
    r"|auth(?!entication)|credential)s?[A-Za-z0-9_\-]*)(\s*[:=]\s*|\s+is\s+)(['\"]?)([^\s'\",;]{3,})"
)


MIN_SECRET_LENGTH: Final = 4
"""Given secrets shorter than this are not masked: masking every "a" would destroy the text
and protect nothing."""


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Replace every given secret, and every secret-shaped substring, with ``[REDACTED]``.

    ``secrets``: literal values to mask wherever they appear (the configured API key, an
    internal key); ``None`` and values shorter than :data:`MIN_SECRET_LENGTH` are skipped.
    """
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{REDACTED}", text)


def truncate(text: str, max_length: int) -> str:
    """Cut ``text`` to ``max_length`` characters, saying how much was dropped."""
    if len(text) <= max_length:
        return text
    return f"{text[:max_length]}…[truncated {len(text) - max_length} chars]"


def safe_content(text: str, max_length: int) -> str:
    """Scrub then truncate: the one way captured content is prepared for export."""
    return truncate(scrub(text), max_length)


def digest(text: str) -> str:
    """A short SHA-256 of the content: lets two events be matched without exporting it."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


_MAX_DEPTH: Final = 8
_MAX_ITEMS: Final = 100


def safe_json(value: Any, max_length: int) -> Any:
    """A JSON-like value (tool arguments) made safe to keep: every string scrubbed and
    truncated, and the structure bounded (nesting, items per container), so one huge or
    hostile argument cannot bloat an audit record."""
    return _safe(value, max_length, 0)


def _safe(value: Any, max_length: int, depth: int) -> Any:
    if isinstance(value, str):
        return safe_content(value, max_length)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return "[truncated: nested too deep]"
    if isinstance(value, dict):
        items = list(value.items())
        out = {
            safe_content(str(key), max_length): _safe(item, max_length, depth + 1)
            for key, item in items[:_MAX_ITEMS]
        }
        if len(items) > _MAX_ITEMS:
            out["…"] = f"[truncated {len(items) - _MAX_ITEMS} items]"
        return out
    if isinstance(value, list | tuple):
        kept = [_safe(item, max_length, depth + 1) for item in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            kept.append(f"[truncated {len(value) - _MAX_ITEMS} items]")
        return kept
    return safe_content(str(value), max_length)
