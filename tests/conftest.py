"""Shared fixtures: the scripted model server, and a real Lanternpath server on 127.0.0.1
that talks to it over real HTTP (the OpenAI-compatible path of service/llm/client.py), with
a fresh SQLite file per test."""
from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import service  # noqa: F401  (litellm's offline switches)
from service.config import Settings
from service.runtime import create_app
from tests.support.live_server import LiveServer
from tests.support.scripted_model import ScriptedModelServer

pytest_plugins = ["tests.support.fixtures"]


def scripted_settings(model: ScriptedModelServer, database_url: str, **overrides) -> Settings:
    values = dict(
        llm_model="openai/scripted", llm_api_base=model.url, llm_api_key="test-key",
        database_url=database_url, first_token_timeout=5.0, idle_timeout=3.0, helper_timeout=10.0,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'lanternpath.db'}"


@pytest.fixture
def adventure_seed() -> int | None:
    """The server's ADVENTURE_SEED. None: each adventure draws a random seed, as a player's
    does; a test that needs a given plan sets one (tests.support.seeds.seed_with)."""
    return None


@pytest.fixture
def settings(scripted_model: ScriptedModelServer, database_url: str, adventure_seed: int | None) -> Settings:
    return scripted_settings(scripted_model, database_url, adventure_seed=adventure_seed)


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def litellm_loaded() -> None:
    """A server whose image model is reached through litellm (any but an `openai/` model on a
    base URL) imports litellm as it starts: seconds, once per process. Tests that may take
    that path pay for it here, not inside a server's start-up time limit."""
    from service.llm.client import _litellm

    _litellm()


def picture_settings(model: ScriptedModelServer, database_url: str, **overrides) -> Settings:
    """Settings with pictures drawn by the scripted model's images endpoint."""
    return scripted_settings(model, database_url, image_model="openai/scripted-images", **overrides)
