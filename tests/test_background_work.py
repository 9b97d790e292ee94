"""The database's background lane: the jobs' and picture streams' reads and writes never
queue ahead of a player's."""
from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from service.store.db import BACKGROUND_READS
from tests.support.database import migrated_sessions


@pytest.fixture
async def sessions(database_url):
    async with migrated_sessions(database_url) as sessions:
        yield sessions


def _work(ran: list[str], name: str, seconds: float):
    def work(session) -> str:
        session.execute(text("SELECT 1"))
        time.sleep(seconds)  # the database's thread is busy this long
        ran.append(name)
        return name

    return work


async def test_when_many_background_writes_are_queued_then_a_players_write_waits_behind_one_of_them_at_most(
    sessions,
):
    ran: list[str] = []
    behind = [asyncio.create_task(sessions.background.write(_work(ran, f"job {n}", 0.05))) for n in range(6)]
    await asyncio.sleep(0.01)  # the first job's write is under way
    assert await sessions.write(_work(ran, "choice", 0.0)) == "choice"
    await asyncio.gather(*behind)
    assert ran.index("choice") <= 1, f"the player's write ran after {ran.index('choice')} background writes: {ran}"
    assert sorted(ran) == sorted(["choice", *(f"job {n}" for n in range(6))])


async def test_when_many_background_reads_are_queued_then_a_players_read_does_not_wait_for_them(sessions):
    ran: list[str] = []
    behind = [asyncio.create_task(sessions.background.read(_work(ran, f"look {n}", 0.05))) for n in range(8)]
    await asyncio.sleep(0.01)
    assert await sessions.read(_work(ran, "page", 0.0)) == "page"
    await asyncio.gather(*behind)
    assert ran.index("page") <= BACKGROUND_READS, f"the player's read waited for background reads: {ran}"
