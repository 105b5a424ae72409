"""Fixtures of the reliability suite (see ``support.py`` and ``deploy/soak.mk``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.settings import Settings


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return Settings(data_dir=tmp_path / "data", **overrides)

    return build
