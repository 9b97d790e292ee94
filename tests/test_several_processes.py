"""Several server processes on one PostgreSQL database and one Redis, as behind a load
balancer: a choice, its stream, a reconnect with Last-Event-ID and the summary page may each
land on a different process, and a process may die, and still no text comes twice and none is
missing, every stream ends, and every job's result is stored once."""
from __future__ import annotations

import asyncio
import html
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from bs4 import BeautifulSoup

from service.store.adventures import AdventureStore
from service.store.db import create_engine, migrate_async, session_factory
from service.store.jobs import JobQueue
from service.store.models import Adventure
from tests.support import player
from tests.support.server_process import ROOT
from tests.support.several import REDIS_URL, Processes, forget_start_limits, require_servers
from tests.test_postgres import postgres_url  # noqa: F401  (a fixture)

WORLD, TOPIC = "amber-dune-caravan", "world-geography"
FINISHED = ["replace-content", "choices", "close"]


@pytest.fixture
def processes(scripted_model, request, tmp_path) -> Iterator[Processes]:
    require_servers()
    database = request.getfixturevalue("postgres_url")
    env = {"LLM_MODEL": "openai/scripted", "LLM_API_BASE": scripted_model.url, "LLM_API_KEY": "test-key",
           "DATABASE_URL": database, "REDIS_URL": REDIS_URL, "SECRET_KEY": "several-processes",
           "WRITER_LEASE_SECONDS": "1", "JOB_LEASE_SECONDS": "2", "JOB_BACKOFF_SECONDS": "0.2"}
    forget_start_limits()
    running = Processes(env, tmp_path)
    yield running
    running.stop()


def _text(events: list[player.SseEvent]) -> str:
    return " ".join(html.unescape("".join(e.data for e in events if e.event == "chunk")).split())


def _kept(result: player.SseResult) -> str:
    """The finished chapter's text, as its replace-content event carries it."""
    return " ".join(BeautifulSoup(result.data("replace-content"), "html.parser").get_text(" ").split())


def _ids(events: list[player.SseEvent]) -> list[int]:
    return [int(e.id) for e in events]


def _chapter_two(processes, on: int) -> tuple[player.ChapterPage, str]:
    """Chapter 1 read and chosen on process `on`: answers chapter 1's page and chapter 2's stream."""
    with processes.client(on) as client:
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
        stream_url = player.choose_htmx(client, page.action, page.choices[0])
        processes.keep(client)
    return page, stream_url


def test_when_a_choice_its_stream_a_reconnect_and_the_summary_land_on_different_processes_then_nothing_is_twice_or_missing(  # noqa: E501
    processes, scripted_model
):
    scripted_model.script.token_interval = 0.02
    processes.start(3)
    _, stream_url = _chapter_two(processes, on=0)

    with processes.client(1) as client:
        seen = player.read_sse(client, stream_url, limit=25)
    with processes.client(2) as client:
        rest = player.read_sse(client, stream_url, headers={"Last-Event-ID": seen.events[-1].id})

    assert rest.names[-3:] == FINISHED and rest.names.count("close") == 1
    assert _ids(seen.events + rest.events) == sorted(set(_ids(seen.events + rest.events))), "an event came twice"
    assert _text(seen.events + rest.events) == _kept(rest), "the text joined across processes is not the chapter"

    with processes.client(1) as client:
        chapter_three = player.read_chapter(client, stream_url.removesuffix("/stream"))
        moved = client.post(chapter_three.action, data={"choice": chapter_three.choices[0]})
        assert moved.status_code == 303
        player.read_chapter(client, moved.headers["location"])
        summary = client.get(stream_url.split("/chapters/")[0] + "/summary")
    assert summary.status_code == 200
    assert len(BeautifulSoup(summary.text, "html.parser").select("[data-chapter]")) == 3


def test_when_the_process_serving_a_stream_is_killed_then_the_reconnect_on_another_goes_on_with_no_gap_and_no_duplicate(  # noqa: E501
    processes, scripted_model
):
    scripted_model.script.token_interval = 0.03
    writer, reader = processes.start(2)
    _, stream_url = _chapter_two(processes, on=0)

    seen: list[player.SseEvent] = []
    with processes.client(1) as client, pytest.raises(httpx.HTTPError):
        with client.stream("GET", stream_url) as response:
            for event in player.sse_events(response):
                seen.append(event)
                if len(seen) == 20:
                    reader.kill()
    assert len(seen) >= 20 and "close" not in [e.event for e in seen]

    with processes.client(0) as client:
        rest = player.read_sse(client, stream_url, headers={"Last-Event-ID": seen[-1].id})
    assert rest.names[-3:] == FINISHED
    assert _ids(seen + rest.events) == sorted(set(_ids(seen + rest.events))), "an event came twice"
    assert _text(seen + rest.events) == _kept(rest), "text was lost or repeated across the reconnect"


def test_when_the_process_writing_a_chapter_is_killed_then_a_reader_elsewhere_gets_what_was_written_then_a_retry(
    processes, scripted_model
):
    scripted_model.script.token_interval = 0.05
    writer, _ = processes.start(2)
    _, stream_url = _chapter_two(processes, on=0)

    with processes.client(1) as client:
        seen = player.read_sse(client, stream_url, limit=10)
        writer.kill()
        started = time.monotonic()
        rest = player.read_sse(client, stream_url, headers={"Last-Event-ID": seen.events[-1].id})
        waited = time.monotonic() - started

        assert rest.names[-2:] == ["chapter-error", "close"], f"the stream ended with {rest.names[-3:]}"
        assert waited < 15, f"the stream took {waited:.0f} s to end after its writer died"
        ids = _ids(seen.events + rest.events)
        assert ids == sorted(set(ids)), "an event came twice"
        retry = BeautifulSoup(rest.data("chapter-error"), "html.parser").select_one('form[action$="/retry"]')
        assert client.post(retry["action"]).status_code == 303
        again = player.read_sse(client, stream_url)
    assert again.names[-3:] == FINISHED, "the retry on another process did not write the chapter"


def test_when_players_start_adventures_on_several_processes_then_one_start_limit_counts_them_all(processes):
    processes.env.update(START_LIMIT_BURST="2", START_LIMIT_SECONDS="60")
    processes.start(2)
    form = {"story_category": WORLD, "lesson_topic": TOPIC}
    answers = []
    for on in (0, 1, 0):
        with processes.client(on) as client:
            answers.append(client.post("/", data=form))
    assert [a.status_code for a in answers] == [303, 303, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1


def test_when_served_by_several_workers_then_chapters_stream_whichever_worker_answers(processes, scripted_model):
    scripted_model.script.token_interval = 0.01
    processes.start(1, args=["--workers", "2"])
    _, stream_url = _chapter_two(processes, on=0)
    for _ in range(3):  # a new connection each time: the workers take turns at the socket
        with processes.client(0) as client:
            result = player.read_sse(client, stream_url)
            assert result.names[-3:] == FINISHED and _text(result.events) in ("", _kept(result))


@pytest.mark.parametrize("missing", ["REDIS_URL", "DATABASE_URL"])
def test_when_several_workers_are_asked_for_without_redis_or_postgresql_then_serve_refuses_saying_why(
    missing, tmp_path
):
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "DATABASE_URL": "postgresql+asyncpg://x@127.0.0.1:1/x"}
    env[missing] = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}" if missing == "DATABASE_URL" else ""
    run = subprocess.run([sys.executable, "-m", "service", "serve", "--workers", "2"], cwd=ROOT,
                         env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and missing in run.stderr, run.stderr[-500:]


@pytest.fixture
async def two_queues(postgres_url):  # noqa: F811
    require_servers()
    await migrate_async(postgres_url)
    engines = [create_engine(postgres_url) for _ in range(2)]
    sessions = [session_factory(engine) for engine in engines]
    yield (AdventureStore(sessions[0]), JobQueue(sessions[0], owner="process-a", lease_seconds=0.5),
           JobQueue(sessions[1], owner="process-b", lease_seconds=0.5))
    for engine in engines:
        await engine.dispose()


async def _adventures_with_jobs(store: AdventureStore, count: int) -> None:
    for n in range(count):
        await store.create_adventure(Adventure(id=f"race-{n}", owner_hash="x", world_key=WORLD, topic_key=TOPIC,
                                               seed=n, plan=["STORY"] * 10, question_ids=[]), "STORY")
        await store.complete_chapter(f"race-{n}", 1, {"text": "Mira walked on.", "choices": ["Go"]},
                                     ["summary", "characters"])


async def test_when_two_processes_race_for_the_same_jobs_then_each_result_is_stored_once(two_queues):
    store, first, second = two_queues
    await _adventures_with_jobs(store, 15)
    results: list[int] = []

    async def worker(queue: JobQueue) -> None:
        while (job := await queue.claim()) is not None:
            await asyncio.sleep(0.005)  # the job's own work: the other workers claim meanwhile
            stored = await queue.done(job.id, lambda session, job_id=job.id: results.append(job_id))
            assert stored, f"job {job.id} was taken over while its lease held"

    await asyncio.gather(*(worker(queue) for queue in (first, second) for _ in range(4)))

    assert sorted(results) == sorted(set(results)), "a job's result was stored twice"
    assert len(results) == 30
    assert {job.state for job in await first.listing()} == set(), "jobs were left pending or running"


async def test_when_a_process_dies_holding_a_job_then_another_takes_it_once_its_lease_lapses(two_queues):
    store, dead, alive = two_queues
    await _adventures_with_jobs(store, 1)
    held = await dead.claim()  # and then its process dies: the lease is never renewed
    other = await alive.claim()  # the adventure's other job
    await alive.done(other.id)

    assert await alive.claim() is None, "a job under a live lease was claimed again"
    await asyncio.sleep(0.6)
    taken = await alive.claim()
    assert taken is not None and taken.id == held.id, "the dead process's job was not taken over"

    results: list[str] = []
    assert not await dead.done(held.id, lambda session: results.append("dead")), "a job taken over was stored"
    assert await alive.done(taken.id, lambda session: results.append("alive"))
    assert results == ["alive"]

