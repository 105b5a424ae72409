"""The per-session workspace folder, and the one function that turns a path into a file.

Every tool that touches files goes through :meth:`Workspace.resolve`, so confinement is
checked in one place: the path is resolved the way the OS will follow it (symlinks
included) and must land inside the workspace root's own real path. Anything else raises
:class:`~agent_runtime.errors.PathOutsideWorkspace` and no file outside is ever touched.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent_runtime.errors import PathOutsideWorkspace

__all__ = ["WORKSPACES_DIRNAME", "Workspace"]

WORKSPACES_DIRNAME = "workspaces"


class Workspace:
    """A folder a session's tools may read and write, and nothing beyond it."""

    def __init__(self, root: Path) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.root = Path(os.path.realpath(root))

    @classmethod
    def for_session(
        cls, data_dir: Path, session_id: str, *, workspaces: Path | None = None
    ) -> Workspace:
        """``data_dir / "workspaces" / <session_id>``, created on demand; ``workspaces``:
        the folder of every session's workspace instead (``AGENT_RUNTIME_WORKSPACE_DIR``, a
        volume every replica mounts, so a run resumed on another replica finds its files).

        The id is checked again here (not only by the session manager) because it becomes
        a path component: a separator, ``.`` or ``..`` would point somewhere else.
        """
        if (
            not session_id
            or session_id in (".", "..")
            or "/" in session_id
            or "\\" in session_id
            or "\0" in session_id
        ):
            raise PathOutsideWorkspace("session id cannot name a workspace folder")
        base = Path(workspaces) if workspaces is not None else Path(data_dir) / WORKSPACES_DIRNAME
        return cls(base / session_id)

    def resolve(self, path: str) -> Path:
        """The real path ``path`` refers to, guaranteed to be inside the workspace.

        Relative paths are taken from the root; absolute paths are accepted only when they
        already point inside it. ``..`` segments, symlinks (to files or folders, at any
        depth) and NUL bytes that would leave the root are refused. The returned path has
        its symlinks resolved, so callers act on the very file that was checked.
        """
        if not isinstance(path, str):
            raise PathOutsideWorkspace("path must be a string")
        if "\0" in path:
            raise PathOutsideWorkspace("path must not contain NUL bytes")
        candidate = Path(path) if os.path.isabs(path) else self.root / path
        try:
            real = Path(os.path.realpath(candidate))
        except (OSError, ValueError) as exc:
            raise PathOutsideWorkspace("path cannot be resolved") from exc
        if real != self.root and not real.is_relative_to(self.root):
            raise PathOutsideWorkspace(f"path {_short(path)!r} is outside the workspace")
        return real

    def relative(self, path: Path) -> str:
        """``path`` (already resolved) relative to the root, as shown back to the model."""
        rel = path.relative_to(self.root).as_posix()
        return "." if rel in ("", ".") else rel


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
