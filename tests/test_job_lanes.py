"""The job runner's lanes: news of a job costs one claim per lane however many of its workers
are idle, and a lane still runs as many jobs at once as it has workers."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from service.config import Settings
from service.jobs.runner import JobRunner, Lane
from service.store.adventures import AdventureStore
from service.store.jobs import JobQueue
from service.store.models import Adventure, Job
from tests.support.database import migrated_sessions

SUMMARIES, CHARACTERS = frozenset({"summary"}), frozenset({"characters"})


class NoStreams:
    """No chapter is being written."""

    def __init__(self) -> None:
        self.idle = asyncio.Event()
        self.idle.set()

    def streaming_chapters(self) -> set[tuple[str, int]]:
        return set()

    def watch(self, watcher) -> None:
        pass


@pytest.fixture
async def stores(database_url) -> AsyncIterator[tuple[AdventureStore, JobQueue]]:
    async with migrated_sessions(database_url) as sessions:
        yield AdventureStore(sessions), JobQueue(sessions)


def _settings(database_url: str) -> Settings:
    return Settings(_env_file=None, llm_model="openai/scripted", llm_api_base="http://127.0.0.1:9",
                    database_url=database_url)


async def _chapters_with_jobs(store: AdventureStore, chapters: int) -> None:
    await store.create_adventure(Adventure(id="a1", owner_hash="x", world_key="w", topic_key="t", seed=1,
                                           plan=["STORY"] * 10, question_ids=[]), "STORY")
    for number in range(1, chapters + 1):
        await store.complete_chapter("a1", number, {"text": "Mira walked on.", "choices": ["Go"]},
                                     ["summary", "characters"])


async def test_when_sixteen_idle_workers_hear_news_then_their_lane_asks_the_queue_once(stores, database_url):
    _, queue = stores
    claims: list[frozenset] = []
    claim = queue.claim

    async def counted(skip=(), kinds=None, while_streaming=(), passed=()):
        claims.append(frozenset(kinds))
        return await claim(skip, kinds, while_streaming, passed)

    queue.claim = counted
    runner = JobRunner(queue, {"summary": _never, "characters": _never}, NoStreams(), _settings(database_url),
                       lanes=[Lane(SUMMARIES, 16), Lane(CHARACTERS, 2)])
    await runner.start(recover=False)
    try:
        await asyncio.sleep(0.3)  # each lane's first look at the (empty) queue
        first = len(claims)
        for _ in range(5):
            runner.wake()
            await asyncio.sleep(0.1)
    finally:
        await runner.stop()

    assert first == 2, f"the first look cost {first} claims"
    news = claims[first:]
    assert news.count(SUMMARIES) == 5 and news.count(CHARACTERS) == 5, (
        f"five pieces of news cost {news.count(SUMMARIES)} claims of the 16-worker lane "
        f"and {news.count(CHARACTERS)} of the 2-worker lane")


async def test_when_a_lane_has_more_jobs_than_workers_then_all_its_workers_run_at_once_and_every_job_ends(
    stores, database_url
):
    store, queue = stores
    await _chapters_with_jobs(store, 6)  # six summary jobs
    running, most, release = set(), 0, asyncio.Event()

    async def summary(job: Job) -> None:
        nonlocal most
        running.add(job.id)
        most = max(most, len(running))
        await release.wait()
        running.discard(job.id)

    runner = JobRunner(queue, {"summary": summary, "characters": _done}, NoStreams(), _settings(database_url),
                       lanes=[Lane(SUMMARIES, 4), Lane(CHARACTERS, 1)])
    await runner.start(recover=False)
    try:
        async with asyncio.timeout(10):
            while len(running) < 4:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # a fifth summary must not start while four run
        assert most == 4
        release.set()
        async with asyncio.timeout(10):
            while await queue.next_due(SUMMARIES) is not None or running:
                await asyncio.sleep(0.05)
    finally:
        await runner.stop()


async def _never(job: Job) -> None:
    raise AssertionError("no job was queued")


async def _done(job: Job) -> None:
    return None


async def test_when_a_lanes_due_jobs_are_all_done_elsewhere_then_it_waits_for_news_instead_of_asking_again(
    stores, database_url
):
    # Regression: a lane slept until its next due job, which was due already (a picture drawn
    # early, whose job stays pending until the drawing ends it): it asked the queue every 50 ms.
    store, queue = stores
    await _chapters_with_jobs(store, 1)
    claims = []
    claim = queue.claim

    async def counted(skip=(), kinds=None, while_streaming=(), passed=()):
        claims.append(await claim(skip, kinds, while_streaming, passed))
        return claims[-1]

    queue.claim = counted
    runner = JobRunner(queue, {"summary": _never, "characters": _never}, NoStreams(), _settings(database_url),
                       lanes=[Lane(SUMMARIES, 2, elsewhere=lambda: {(kind, "a1", 1) for kind in SUMMARIES})])
    await runner.start(recover=False)
    try:
        await asyncio.sleep(1.0)
        assert claims == [None], f"in 1 s the lane asked the queue {len(claims)} times"
        runner.wake()  # the drawing elsewhere could not end the job: it is the lane's
        await asyncio.sleep(0.3)
    finally:
        await runner.stop()
    assert len(claims) == 2
