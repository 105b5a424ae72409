"""Fixtures of the reliability suite (see ``support.py`` and ``deploy/soak.mk``).

The load, ``kill -9`` and SIGTERM tests run on both backends: in process through
``make_settings(database_url=database_url)``, in a service process through ``store_env``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.settings import Settings


@pytest.fixture
def store_env(database_url: str | None) -> dict[str, str]:
    """The environment that puts a service process on this run's backend: nothing (the
    embedded SQLite store in its data directory), then ``DATABASE_URL`` of a fresh
    PostgreSQL database. Asking for it runs the test on both backends."""
    return {} if database_url is None else {"DATABASE_URL": database_url}


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return Settings(data_dir=tmp_path / "data", **overrides)

    return build
