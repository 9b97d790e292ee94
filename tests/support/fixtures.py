"""Pytest fixtures for the scripted model server (tests.support.scripted_model).

Enable with `pytest_plugins = ["tests.support.fixtures"]` (in tests/conftest.py or a test module).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scripted_model import ScriptedModelServer


@pytest.fixture(scope="session")
def scripted_model_server() -> Iterator[ScriptedModelServer]:
    # One uvicorn thread for the whole run: it has its own event loop, so it does not care
    # which loop scope pytest-asyncio gives each test.
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def scripted_model(scripted_model_server: ScriptedModelServer) -> Iterator[ScriptedModelServer]:
    """The shared server with a fresh Script and an empty request log for this test."""
    scripted_model_server.reset()
    yield scripted_model_server
    scripted_model_server.reset()  # also ends any stall this test left hanging
