"""The database's background lane: the jobs' and picture streams' reads and writes never
queue ahead of a player's."""
from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from service.store.db import BACKGROUND_READS, Turns
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


async def test_a_background_write_a_player_waits_to_see_goes_ahead_of_the_queued_jobs_writes(sessions):
    # A picture drawn for a chapter being read is stored as soon as the write under way ends.
    ran: list[str] = []
    behind = [asyncio.create_task(sessions.background.write(_work(ran, f"job {n}", 0.03))) for n in range(6)]
    await asyncio.sleep(0.01)  # the first job's write is under way
    pictures = [asyncio.create_task(sessions.background.write_soon(_work(ran, f"picture {n}", 0.0)))
                for n in range(2)]
    await asyncio.gather(*behind, *pictures)
    assert ran[:3] == ["job 0", "picture 0", "picture 1"], ran
    assert ran[3:] == [f"job {n}" for n in range(1, 6)]


async def test_a_write_cancelled_while_it_waits_for_its_turn_holds_up_no_other(sessions):
    ran: list[str] = []
    first = asyncio.create_task(sessions.background.write(_work(ran, "job 0", 0.05)))
    await asyncio.sleep(0.01)
    cancelled = asyncio.create_task(sessions.background.write_soon(_work(ran, "picture", 0.0)))
    last = asyncio.create_task(sessions.background.write(_work(ran, "job 1", 0.0)))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await asyncio.wait_for(asyncio.gather(first, last), 5)
    assert ran == ["job 0", "job 1"]
    # The lane is free again: a write now runs at once.
    assert await asyncio.wait_for(sessions.background.write(_work(ran, "job 2", 0.0)), 1) == "job 2"


async def test_a_turn_handed_to_a_write_just_cancelled_goes_on_to_the_next():
    turns, ran = Turns(), []

    async def write(name: str) -> None:
        async with turns.turn():
            ran.append(name)

    async with turns.turn():
        handed, next_one = asyncio.create_task(write("handed")), asyncio.create_task(write("next"))
        await asyncio.sleep(0)  # both wait
    handed.cancel()  # its turn is given, but it has not run yet
    await asyncio.wait_for(asyncio.gather(handed, next_one, return_exceptions=True), 1)
    assert ran == ["next"]
    async with turns.turn():  # free again
        pass
