"""The scripted model, shared by the provider and stream tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent_runtime.llm import OpenAIChatModel, scripted_model


@pytest.fixture
async def model() -> AsyncIterator[OpenAIChatModel]:
    chat_model = scripted_model()
    yield chat_model
    await chat_model.aclose()
