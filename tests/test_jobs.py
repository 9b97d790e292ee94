"""Deferred work: summaries and character descriptions run after a chapter's stream has
closed, survive model failures and restarts, and leave exactly one result."""
from __future__ import annotations

import re

import httpx
import pytest

from service.config import Settings
from tests.conftest import scripted_settings
from tests.support import player
from tests.support.database import migrated_sessions, rows, wait_until

WORLD, TOPIC = "amber-dune-caravan", "animals-and-habitats"


def _helper_requests(model, task: str) -> dict[int, float]:
    """When the scripted model received each chapter's helper call of this task."""
    found = {}
    for request in list(model.requests):
        content = request["messages"][-1]["content"]
        if not request["stream"] and f"TASK: {task}" in content:
            number = int(re.search(r"CHAPTER (\d+):", content).group(1))
            found.setdefault(number, request["received"])
    return found


def _jobs(database_url: str) -> list[tuple]:
    return rows(database_url, "SELECT kind, chapter_number, state, attempts, last_error FROM jobs ORDER BY id")


@pytest.fixture
def settings(scripted_model, database_url) -> Settings:
    return scripted_settings(scripted_model, database_url, job_backoff_seconds=0.2)


def test_when_helper_calls_are_slow_then_jobs_start_only_after_close_and_all_finish(
    client, scripted_model, database_url
):
    scripted_model.script.update(helper_latency=2.0, token_interval=0.02)
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    closed = {}
    for number in (2, 3):
        result = player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))
        closed[number] = result.events[-1].at
        action, choices = player.choices_from_html(result.data("choices"))
        page = player.ChapterPage(page.url, "", choices, action, None, "")

    wait_until(lambda: all(j[2] == "done" for j in _jobs(database_url)) and len(_jobs(database_url)) == 6,
               30, f"jobs did not all finish: {_jobs(database_url)}")
    for task in ("SUMMARY", "CHARACTERS"):
        started = _helper_requests(scripted_model, task)
        for number, closed_at in closed.items():
            assert started[number] > closed_at, f"the {task} job of chapter {number} started before its close"
    summaries = rows(database_url, "SELECT chapter_number, title FROM summaries ORDER BY chapter_number")
    assert [n for n, _ in summaries] == [1, 2, 3]
    assert rows(database_url, "SELECT name FROM characters") == [("Mira",)]


def test_when_the_helper_fails_twice_then_the_summary_is_still_written(client, scripted_model, database_url):
    scripted_model.script.update(fail_status=500, fail_times=2, fault_scope="helper")
    player.read_chapter(client, player.start(client, WORLD, TOPIC))

    # The summary is stored first and its job marked done just after; the other job may still
    # be waiting out its backoff: wait for both jobs to be done.
    wait_until(lambda: [j[2] for j in _jobs(database_url)] == ["done", "done"], 20,
               f"the jobs did not finish: {_jobs(database_url)}")
    assert rows(database_url, "SELECT count(*) FROM summaries")[0][0] == 1
    # The two failures fall on the first helper calls (summary or characters): a retry did the work.
    attempts = sum(j[3] for j in _jobs(database_url))
    assert attempts == 4, f"{attempts} attempts for two failures and two successful jobs"


def test_when_the_helper_always_fails_then_the_job_fails_and_a_get_of_the_summary_page_never_retries_it(
    client, scripted_model, database_url
):
    scripted_model.script.update(fail_status=500, fault_scope="helper")
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    wait_until(lambda: [j for j in _jobs(database_url) if j[0] == "summary" and j[2] == "failed"], 20,
               f"the summary job never failed: {_jobs(database_url)}")
    assert "answered 500" in [j for j in _jobs(database_url) if j[0] == "summary"][0][4]

    scripted_model.script.update(fail_status=None)
    summary_url = page.url.rsplit("/chapters/", 1)[0] + "/summary"
    for _ in range(3):
        assert client.get(summary_url).status_code == 200
        assert client.head(summary_url).status_code == 200
    assert [(j[2], j[3]) for j in _jobs(database_url) if j[0] == "summary"] == [("failed", 3)], \
        "reading the summary page changed the failed job"


async def test_when_a_summary_job_runs_twice_then_one_summary_is_left(scripted_model, database_url):
    from service.content.loader import load_catalog
    from service.jobs.screen_process import ScreenProcess
    from service.jobs.work import ChapterJobs
    from service.llm.client import ModelClient
    from service.store.adventures import AdventureStore
    from service.store.jobs import JobQueue
    from service.store.models import Adventure, Job

    settings = scripted_settings(scripted_model, database_url)
    catalog = load_catalog()
    topic = catalog.topics[TOPIC]
    async with migrated_sessions(database_url) as sessions:
        store, queue = AdventureStore(sessions), JobQueue(sessions)
        adventure = Adventure(id="twice", owner_hash="x", world_key=WORLD, topic_key=TOPIC, seed=1,
                              plan=["STORY"] * 9 + ["CONCLUSION"], question_ids=[q.id for q in topic.questions[:3]])
        await store.create_adventure(adventure, "STORY")
        await store.complete_chapter("twice", 1, {"text": "Mira found a map. " * 20, "choices": ["a", "b", "c"]}, [])
        screen = ScreenProcess(None)
        screen.start()
        jobs = ChapterJobs(store, catalog, ModelClient(settings), screen)
        job = Job(id=0, kind="summary", adventure_id="twice", chapter_number=1)

        # The runner stores what a job returns together with the job's `done`.
        await queue.done(job.id, await jobs.summary(job))
        await queue.done(job.id, await jobs.summary(job))

        assert len(await store.summaries("twice")) == 1



async def _adventure_with_a_chapter(sessions, adventure_id: str, quality: dict):
    from service.content.loader import load_catalog
    from service.store.adventures import AdventureStore
    from service.store.models import Adventure

    topic = load_catalog().topics[TOPIC]
    store = AdventureStore(sessions)
    await store.create_adventure(Adventure(id=adventure_id, owner_hash="x", world_key=WORLD, topic_key=TOPIC, seed=1,
                                           plan=["STORY"] * 9 + ["CONCLUSION"],
                                           question_ids=[q.id for q in topic.questions[:3]]), "STORY")
    await store.complete_chapter(adventure_id, 1, {"text": "Mira found a map.", "choices": ["a", "b", "c"],
                                                   "quality": quality}, [])
    return store


async def test_when_a_summary_is_written_again_then_the_newest_stands_and_the_chapter_notes_its_source(database_url):
    from service.store.adventures import summary_saved

    async with migrated_sessions(database_url) as sessions:
        store = await _adventure_with_a_chapter(sessions, "summed", {"paragraphs": 3})
        await sessions.write(summary_saved("summed", 1, "The map", "Mira finds a map.", source="extract"))
        await sessions.write(summary_saved("summed", 1, "The old map", "Mira finds an old map."))

        summaries = await store.summaries("summed")
        assert [(s.title, s.summary) for s in summaries.values()] == [("The old map", "Mira finds an old map.")]
        assert (await store.chapter("summed", 1)).quality == {"paragraphs": 3, "summary": "model"}


async def test_when_characters_are_merged_then_new_ones_are_added_and_changed_ones_redescribed(database_url):
    from service.store.adventures import characters_merged

    async with migrated_sessions(database_url) as sessions:
        store = await _adventure_with_a_chapter(sessions, "cast", {})
        await sessions.write(characters_merged("cast", {"Mira": "a girl with a red scarf", "Tobin": "a grey fox"}))
        before = {c.name: c.updated_at for c in await store.characters("cast")}
        await sessions.write(characters_merged("cast", {"mira": "a girl with a blue scarf", "Tobin": "a grey fox",
                                                        "Pip": "a small owl"}))

        found = {c.name: c for c in await store.characters("cast")}
        assert {name: c.description for name, c in found.items()} == {
            "Mira": "a girl with a blue scarf", "Pip": "a small owl", "Tobin": "a grey fox"}
        assert found["Tobin"].updated_at == before["Tobin"], "an unchanged description was written again"
        assert found["Mira"].updated_at >= before["Mira"]

async def test_when_picture_jobs_are_held_for_drawings_begun_early_then_no_claim_takes_them_until_they_are_made_due(
    database_url
):
    # A process that draws a picture itself holds its job: a worker (of another process)
    # would draw it a second time. A drawing that cannot end its job makes it due; a restart
    # of the only process makes every held job due (their drawings died with it).
    from service.store.adventures import OPTIONS_JOB, SCENE_JOB, AdventureStore
    from service.store.jobs import JobQueue
    from service.store.models import Adventure

    async with migrated_sessions(database_url) as sessions:
        store, queue = AdventureStore(sessions, pictures=True, picture_hold=60.0), JobQueue(sessions)
        await store.create_adventure(Adventure(id="held", owner_hash="x", world_key=WORLD, topic_key=TOPIC, seed=1,
                                               plan=["STORY"] * 9 + ["CONCLUSION"], question_ids=[]), "STORY")
        await store.complete_chapter("held", 1, {"text": "Mira found a map.", "choices": ["a", "b", "c"]}, ["summary"])

        assert (await queue.claim()).kind == "summary"
        assert await queue.claim() is None, "a picture's job was claimed while its drawing was held for"
        await queue.due_now(SCENE_JOB, "held", 1)
        assert (await queue.claim()).kind == SCENE_JOB
        assert await queue.claim() is None

        assert await queue.recover() == 2  # the two claimed are pending again, and the held one is due
        assert {(await queue.claim()).kind for _ in range(3)} == {"summary", SCENE_JOB, OPTIONS_JOB}


def test_when_summaries_are_still_being_written_then_the_summary_page_fills_them_in_over_sse(
    server, scripted_model, database_url
):
    from bs4 import BeautifulSoup

    scripted_model.script.helper_latency = 1.5
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
        summary_url = page.url.rsplit("/chapters/", 1)[0] + "/summary"
        soup = BeautifulSoup(client.get(summary_url).text, "html.parser")
        stream = soup.select_one("[hx-ext~=sse][sse-connect]")
        assert stream is not None, "a page with summaries still pending does not follow them"
        assert soup.select_one('[data-chapter="1"]')["sse-swap"] == "summary-1"
        note = stream.select_one("#summaries-pending")
        assert note["sse-swap"] == "summaries-done" and note["hx-swap"] == "delete", "the pending note never goes"

        result = player.read_sse(client, stream["sse-connect"])

    assert result.names == ["summary-1", "summaries-done", "close"]
    title = rows(database_url, "SELECT title FROM summaries WHERE chapter_number = 1")[0][0]
    item = BeautifulSoup(result.data("summary-1"), "html.parser").select_one('[data-chapter="1"]')
    assert title in item.get_text() and not item.has_attr("sse-swap")


def test_when_a_summary_failed_then_the_page_offers_a_retry_that_is_a_post(server, scripted_model, database_url):
    from bs4 import BeautifulSoup

    scripted_model.script.update(fail_status=500, fault_scope="helper")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
        wait_until(lambda: [j for j in _jobs(database_url) if j[0] == "summary" and j[2] == "failed"], 20,
                   "the summary job never failed")
        summary_url = page.url.rsplit("/chapters/", 1)[0] + "/summary"
        soup = BeautifulSoup(client.get(summary_url).text, "html.parser")
        retry = soup.select_one('[data-chapter="1"] form[method="post"][action$="/summary/retry"]')
        assert retry is not None and retry.select_one("button[type=submit]"), "a failed summary offers no retry"
        assert client.get(retry["action"]).status_code == 405, "a GET could retry the summaries"

        scripted_model.script.update(fail_status=None)
        moved = client.post(retry["action"])
        assert moved.status_code == 303 and moved.headers["location"] == summary_url
        wait_until(lambda: rows(database_url, "SELECT count(*) FROM summaries")[0][0] == 1, 10,
                   "the retried summary was never written")
        text = client.get(summary_url).text

    title = rows(database_url, "SELECT title FROM summaries WHERE chapter_number = 1")[0][0]
    assert title in text


def test_when_summaries_are_still_being_written_then_the_summary_page_answers_at_once_with_a_refresh_link(
    server, scripted_model, database_url
):
    from bs4 import BeautifulSoup

    # Every helper call hangs until the test ends: the summaries stay unwritten.
    scripted_model.script.update(stall_before_first=True, fault_scope="helper")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
        summary_url = page.url.rsplit("/chapters/", 1)[0] + "/summary"
        wait_until(lambda: [j[2] for j in _jobs(database_url)].count("running") >= 1, 10, "no job started")
        # A page that waited for its summaries took up to 20 s: 5 s is ample for one that does not.
        response = client.get(summary_url, timeout=5)
        head = client.head(summary_url, timeout=5)

    soup = BeautifulSoup(response.text, "html.parser")
    item = soup.select_one('[data-chapter="1"]')
    assert response.status_code == 200 and head.status_code == 200
    assert "being written" in item.get_text() and item.select_one("h3").get_text(strip=True)
    refresh = soup.find("a", string="Refresh")
    assert refresh is not None and refresh["href"] == summary_url
    assert soup.select_one('meta[http-equiv="refresh" i]') is None and "refresh" not in response.headers
    assert soup.select_one("[hx-ext~=sse][sse-connect]") is not None


def _in_flight_at_once(requests: list[dict]) -> int:
    """The most helper calls the scripted model was answering at one moment."""
    edges = sorted([(r["received"], 1) for r in requests] + [(r["finished"], -1) for r in requests])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_with_a_hosted_helper_and_no_setting_then_more_jobs_run_at_once_than_the_embedded_models_two(
    client, scripted_model, database_url
):
    # Six players' first chapters: twelve summary and character calls of a slow helper. The
    # default workers of a hosted helper take them together; two would take six rounds.
    scripted_model.script.update(helper_latency=1.5)
    for world in ("amber-dune-caravan", "capwood-hollow", "brinelight-city") * 2:
        player.read_chapter(client, player.start(client, world, TOPIC))
    wait_until(lambda: sum(j[2] == "done" for j in _jobs(database_url)) == 12, 30,
               f"jobs did not all finish: {_jobs(database_url)}")
    helper = [r for r in scripted_model.requests if r["kind"] in ("SUMMARY", "CHARACTERS")]
    assert len(helper) == 12 and _in_flight_at_once(helper) > 6
    assert Settings(_env_file=None, llm_model="openai/gpt-4o-mini").job_workers == 16
    assert Settings(_env_file=None).job_workers == 2, "the embedded model serves its jobs one worker at a time"
    assert Settings(_env_file=None, llm_model="openai/gpt-4o-mini", job_concurrency=3).job_workers == 3

