"""The same game on PostgreSQL (DATABASE_URL=postgresql+asyncpg://...): migrations, a whole
adventure through the forms, the SSE stream and the deferred summaries.

Runs where TEST_POSTGRES_URL names a server (CI starts one); CI also sets
REQUIRE_POSTGRES=1, so there a missing server fails the run instead of skipping it.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from bs4 import BeautifulSoup

from service.runtime import create_app
from tests.conftest import scripted_settings
from tests.support import player
from tests.support.database import named_server, postgres_admin
from tests.support.live_server import LiveServer
from tests.test_play import play_without_javascript

ADMIN_URL = named_server("TEST_POSTGRES_URL", "REQUIRE_POSTGRES")
NO_SERVER = ("PostgreSQL tests skipped: no server named by TEST_POSTGRES_URL. Set it to "
             "postgresql+asyncpg://USER:PASSWORD@127.0.0.1:5432/postgres for a user that may create databases "
             "(Debian: apt-get install -y postgresql; .ci/run shows the whole set-up)")
pytestmark = pytest.mark.skipif(not ADMIN_URL, reason=NO_SERVER)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    name = f"lanternpath_{uuid.uuid4().hex[:12]}"
    asyncio.run(postgres_admin(ADMIN_URL, f'CREATE DATABASE "{name}"'))
    yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(postgres_admin(ADMIN_URL, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_client(scripted_model, postgres_url) -> Iterator[httpx.Client]:
    settings = scripted_settings(scripted_model, postgres_url)
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.base_url, timeout=30) as client:
        yield client


def test_when_the_database_is_postgresql_then_a_whole_adventure_plays_and_is_summarised(pg_client):
    pages, summary_url = play_without_javascript(pg_client)
    assert len(pages) == 10 and all(len(p.choices) == 3 for p in pages[:9])

    summary = BeautifulSoup(pg_client.get(summary_url).text, "html.parser")
    titles = [c.select_one("h3").get_text(strip=True) for c in summary.select("[data-chapter]")]
    assert len(titles) == 10 and all(titles)


def test_when_the_database_is_postgresql_then_chapters_stream_over_sse(pg_client):
    page = player.read_chapter(pg_client, player.start(pg_client, "clockwork-harbor", "plants"))
    result = player.read_sse(pg_client, player.choose_htmx(pg_client, page.action, page.choices[0]))
    assert result.names[-3:] == ["replace-content", "choices", "close"]


@pytest.mark.usefixtures("litellm_loaded")
def test_when_the_database_is_postgresql_then_a_chapters_picture_is_stored_and_served(scripted_model, postgres_url):
    from tests.conftest import picture_settings
    from tests.support.database import wait_until

    settings = picture_settings(scripted_model, postgres_url)
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.base_url, timeout=30) as client:
        page = player.read_chapter(client, player.start(client, "clockwork-harbor", "plants"))

        def picture():
            soup = BeautifulSoup(client.get(page.url).text, "html.parser")
            return soup.select_one('[data-image-chapter="1"] img')

        img = wait_until(picture, 20, "the chapter's picture was never shown", interval=0.3)
        served = client.get(img["src"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content.startswith(b"\x89PNG")
