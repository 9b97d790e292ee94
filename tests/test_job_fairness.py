"""Fair job claims: a flood of new adventures cannot starve a real player's summaries. Jobs of
adventures a player is playing come first; within each group the adventure served longest ago
goes next (round-robin), whatever order the jobs were queued in. On SQLite, and on PostgreSQL
where TEST_POSTGRES_URL names a server (as in tests/test_postgres.py)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from service.chapters.writer import DEFERRED_JOBS
from service.store.adventures import AdventureStore
from service.store.jobs import JobQueue
from service.store.models import Adventure, Answer
from tests.support.database import migrated_sessions
from tests.test_postgres import ADMIN_URL, NO_SERVER, postgres_url  # noqa: F401  (a fixture)

FLOOD = 40


@pytest.fixture(params=["sqlite", "postgresql"])
def queue_database(request, database_url) -> str:
    if request.param == "sqlite":
        return database_url
    if not ADMIN_URL:
        pytest.skip(NO_SERVER)
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def stores(queue_database) -> AsyncIterator[tuple[AdventureStore, JobQueue]]:
    async with migrated_sessions(queue_database) as sessions:
        yield AdventureStore(sessions), JobQueue(sessions)


async def _adventure(store: AdventureStore, adventure_id: str, chapters: int) -> None:
    """An adventure whose first `chapters` chapters are written (with their jobs queued) and
    whose player chose in every chapter but the last."""
    await store.create_adventure(Adventure(id=adventure_id, owner_hash="x", world_key="w", topic_key="t", seed=1,
                                           plan=["STORY"] * 10, question_ids=[]), "STORY")
    for number in range(1, chapters + 1):
        if number > 1:
            await store.record_choice(Answer(adventure_id=adventure_id, chapter_number=number - 1, choice="Go"),
                                      "STORY", None)
        await store.complete_chapter(adventure_id, number, {"text": "Mira walked on.", "choices": ["Go"]},
                                     DEFERRED_JOBS)


async def _claims(queue: JobQueue, count: int) -> list[str]:
    claimed = []
    for _ in range(count):
        job = await queue.claim()
        await queue.done(job.id)
        claimed.append(job.adventure_id)
    return claimed


async def test_when_a_flood_of_adventures_queued_jobs_first_then_a_players_job_runs_within_the_first_claims(stores):
    store, queue = stores
    for n in range(FLOOD):
        await _adventure(store, f"flood-{n}", 1)
    await _adventure(store, "player", 2)  # queued last: four jobs behind eighty

    claimed = await _claims(queue, 4)

    assert claimed == ["player"] * 4, f"the player's jobs waited behind the flood: {claimed}"


async def test_when_adventures_have_several_jobs_each_then_claims_go_round_them_in_turn(stores):
    store, queue = stores
    for n in range(5):
        await _adventure(store, f"new-{n}", 1)
    players = [f"player-{n}" for n in range(3)]
    for player in players:
        await _adventure(store, player, 3)  # six jobs each

    claimed = await _claims(queue, 18 + 10)

    assert [set(claimed[i:i + 3]) for i in range(0, 18, 3)] == [set(players)] * 6, claimed[:18]
    assert [set(claimed[i:i + 5]) for i in (18, 23)] == [{f"new-{n}" for n in range(5)}] * 2, claimed[18:]
    assert await queue.claim() is None
