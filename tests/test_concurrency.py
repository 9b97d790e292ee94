"""Many players at once on one SQLite file: every write waits its turn (WAL, busy timeout)
instead of failing with "database is locked"."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from service.config import Settings
from tests.conftest import scripted_settings
from tests.support.player import ChapterPage

PLAYERS = 100


@pytest.fixture
def settings(scripted_model, database_url) -> Settings:
    # A hundred streams, their server and the scripted model share this one process: the
    # suite's 3 s idle limit would test how busy the machine is, not the database. The hundred
    # players share one address, as no real hundred do: the start limit is off.
    return scripted_settings(scripted_model, database_url, idle_timeout=15.0, start_limit_burst=0)


async def _play_two_chapters(base_url: str, index: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        started = await client.post("/", data={"story_category": "skyshelf-library", "lesson_topic": "plants"})
        page = ChapterPage.parse(started.headers["location"], (await client.get(started.headers["location"])).text)
        chosen = await client.post(page.action, data={"choice": page.choices[index % 3]})
        second = await client.get(chosen.headers["location"])
        return [started.status_code, chosen.status_code, second.status_code]


async def test_when_a_hundred_players_write_at_once_then_none_sees_an_error(server, scripted_model, database_url):
    results = await asyncio.gather(*(_play_two_chapters(server.base_url, i) for i in range(PLAYERS)))

    assert results == [[303, 303, 200]] * PLAYERS
    from tests.support.database import rows

    assert rows(database_url, "SELECT count(*) FROM answers")[0][0] == PLAYERS
    assert rows(database_url, "SELECT count(*) FROM chapters WHERE state = 'complete'")[0][0] == 2 * PLAYERS
