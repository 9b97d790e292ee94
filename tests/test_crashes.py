"""A real server process killed with SIGKILL loses nothing that was stored: jobs left
pending finish after a restart, and a chapter cut off mid-stream can be written again."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import psutil
import pytest
from bs4 import BeautifulSoup

from tests.support import player
from tests.support.database import rows, wait_until
from tests.support.server_process import ROOT, ServerProcess

WORLD, TOPIC = "verdant-ring-station", "water-cycle-and-weather"


@pytest.fixture
def process_env(scripted_model, database_url) -> dict[str, str]:
    return {"LLM_MODEL": "openai/scripted", "LLM_API_BASE": scripted_model.url, "LLM_API_KEY": "test-key",
            "DATABASE_URL": database_url, "JOB_BACKOFF_SECONDS": "0.2"}


def _second_chapter_under_way(client: httpx.Client, choice: int) -> tuple[player.ChapterPage, str]:
    """Chapter 1 read, a choice made the htmx way: chapter 2 is being written."""
    chapter_one = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    return chapter_one, player.choose_htmx(client, chapter_one.action, chapter_one.choices[choice])


def _restart(process_env, tmp_path, killed: ServerProcess) -> ServerProcess:
    again = ServerProcess(process_env, tmp_path / "server.log")
    again.port = killed.port
    return again.start()


def test_when_the_server_is_killed_with_jobs_pending_then_every_summary_completes_after_restart(
    scripted_model, process_env, database_url, tmp_path
):
    scripted_model.script.helper_latency = 5.0
    first = ServerProcess(process_env, tmp_path / "server.log").start()
    with httpx.Client(base_url=first.base_url, timeout=30) as client:
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
        moved = client.post(page.action, data={"choice": page.choices[0]})
        player.read_chapter(client, moved.headers["location"])
    assert first.kill() == -9
    unfinished = rows(database_url, "SELECT count(*) FROM jobs WHERE state IN ('pending', 'running')")[0][0]
    assert unfinished > 0, "the jobs were done before the kill: the test proves nothing"

    listing = subprocess.run([sys.executable, "-m", "service", "jobs"], cwd=ROOT, capture_output=True, text=True,
                             env=_env(process_env))
    assert "summary" in listing.stdout and ("pending" in listing.stdout or "running" in listing.stdout)

    scripted_model.script.helper_latency = 0.0
    second = _restart(process_env, tmp_path, first)
    try:
        wait_until(lambda: rows(database_url, "SELECT DISTINCT state FROM jobs") == [("done",)], 30,
                   "the jobs were not completed after the restart")
        assert rows(database_url, "SELECT chapter_number FROM summaries ORDER BY 1") == [(1,), (2,)]
    finally:
        second.stop()


def test_when_the_server_is_killed_mid_chapter_then_after_a_restart_the_page_offers_to_write_it_again(
    scripted_model, process_env, database_url, tmp_path
):
    scripted_model.script.token_interval = 0.05
    first = ServerProcess(process_env, tmp_path / "server.log").start()
    with httpx.Client(base_url=first.base_url, timeout=30) as client:
        chapter_one, stream_url = _second_chapter_under_way(client, choice=1)
        with client.stream("GET", stream_url) as response:
            next(response.iter_lines())  # the chapter is under way
            first.kill()
        cookies = dict(client.cookies)

    second = _restart(process_env, tmp_path, first)
    try:
        with httpx.Client(base_url=second.base_url, timeout=30, cookies=cookies) as client:
            chapter_url = stream_url.removesuffix("/stream")
            interrupted = BeautifulSoup(client.get(chapter_url).text, "html.parser")
            retry = interrupted.select_one('form[action$="/retry"]')
            assert retry is not None, "the interrupted chapter offers no way to write it again"
            assert player.read_chapter(client, chapter_one.url).text.split() == chapter_one.text.split()
            assert rows(database_url, "SELECT choice FROM answers") == [(chapter_one.choices[1],)]

            moved = client.post(retry["action"])
            assert moved.status_code == 303
            rewritten = player.read_chapter(client, moved.headers["location"])
            assert len(rewritten.choices) == 3 and len(rewritten.text.split()) > 30
    finally:
        second.stop()


def test_when_a_browser_reconnects_with_its_last_event_id_after_a_crash_then_the_stream_ends_with_a_retry(
    scripted_model, process_env, tmp_path
):
    """Regression: after a crash and a restart, EventSource's reconnect with Last-Event-ID got
    `200 text/event-stream` and no event at all, again and again: the interrupted chapter's
    stored events were numbered from 1, and every id past them dropped `chapter-error` and
    `close`."""
    scripted_model.script.token_interval = 0.05
    first = ServerProcess(process_env, tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=first.base_url, timeout=30) as client:
            _, stream_url = _second_chapter_under_way(client, choice=0)
            seen = player.read_sse(client, stream_url, limit=5)
            cookies = dict(client.cookies)
    finally:
        first.kill()

    second = first.restart()
    try:
        with httpx.Client(base_url=second.base_url, timeout=30, cookies=cookies) as client:
            again = player.read_sse(client, stream_url, headers={"Last-Event-ID": seen.events[-1].id})
            assert again.names == ["chapter-error", "close"], f"the reconnect got {again.names}"
            retry = BeautifulSoup(again.data("chapter-error"), "html.parser").select_one('form[action$="/retry"]')
            assert client.post(retry["action"]).status_code == 303
            assert player.read_sse(client, stream_url).names[-3:] == ["replace-content", "choices", "close"]
    finally:
        second.stop()


def test_when_the_server_is_killed_right_after_a_choice_then_after_a_restart_its_chapter_is_interrupted(
    scripted_model, process_env, database_url, tmp_path
):
    first = ServerProcess(process_env, tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=first.base_url, timeout=30) as client:
            chapter_one = player.read_chapter(client, player.start(client, WORLD, TOPIC))
            # The model has not answered when the server dies (the stall ends with the test).
            scripted_model.script.update(stall_before_first=True, fault_scope="stream")
            stream_url = player.choose_htmx(client, chapter_one.action, chapter_one.choices[2])
            assert rows(database_url, "SELECT state FROM chapters WHERE number = 2") == [("writing",)]
            cookies = dict(client.cookies)
    finally:
        first.kill()  # also when the steps above fail: a live server would outlast the test

    second = _restart(process_env, tmp_path, first)
    try:
        assert rows(database_url, "SELECT state FROM chapters WHERE number = 2") == [("interrupted",)]
        with httpx.Client(base_url=second.base_url, timeout=30, cookies=cookies) as client:
            page = BeautifulSoup(client.get(stream_url.removesuffix("/stream")).text, "html.parser")
            assert page.select_one('form[action$="/retry"]') is not None, "no way to write the chapter again"
    finally:
        second.stop()


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {**os.environ, **extra}


def test_when_the_server_is_stopped_with_sigterm_mid_chapter_then_the_stream_ends_with_chapter_error(
    scripted_model, process_env, database_url, tmp_path
):
    scripted_model.script.token_interval = 0.05
    server = ServerProcess(process_env, tmp_path / "server.log").start()
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        _, stream_url = _second_chapter_under_way(client, choice=0)
        events = []
        with client.stream("GET", stream_url) as response:
            for event in player.sse_events(response):
                events.append(event.event)
                if len(events) == 3:
                    server.process.send_signal(signal.SIGTERM)
    server.process.wait(20)

    assert events[-2:] == ["chapter-error", "close"], f"the stream ended with {events[-3:]}"
    number = int(stream_url.split("/chapters/")[1].split("/")[0])
    assert rows(database_url, "SELECT state, text FROM chapters WHERE number = ?", number) == [("failed", "")]


def test_when_the_server_is_killed_while_pictures_are_drawn_then_they_are_drawn_after_restart(
    scripted_model, process_env, database_url, tmp_path
):
    env = {**process_env, "IMAGE_MODEL": "openai/scripted-images"}
    scripted_model.script.update(stall_before_first=True, fault_scope="image")  # drawing until the kill
    first = ServerProcess(env, tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=first.base_url, timeout=30) as client:
            page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
            cookies = dict(client.cookies)
        wait_until(lambda: len([r for r in scripted_model.requests if r.get("kind") == "IMAGE"]) == 4, 20,
                   "the four pictures (the scene and three choices) were not all being drawn")
        # Both are drawn early, outside the workers: their jobs stay pending until the drawings end them.
        assert rows(database_url, "SELECT kind, state FROM jobs WHERE kind LIKE '%picture%' ORDER BY kind") == [
            ("option-pictures", "pending"), ("picture", "pending")]
    finally:
        first.kill()
    assert rows(database_url, "SELECT count(*) FROM pictures") == [(0,)]

    scripted_model.script.update(stall_before_first=False)
    second = _restart(env, tmp_path, first)
    try:
        wait_until(lambda: rows(database_url, "SELECT count(*) FROM pictures") == [(4,)], 30,
                   "the pictures were not drawn after the restart")
        with httpx.Client(base_url=second.base_url, timeout=30, cookies=cookies) as client:
            img = BeautifulSoup(client.get(page.url).text, "html.parser").select_one('[data-image-chapter="1"] img')
            assert img is not None and img["alt"], "the chapter's slot holds no picture after the restart"
            picture = client.get(img["src"])
            assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    finally:
        second.stop()


def test_when_the_server_alone_is_killed_then_its_picture_process_ends_too(process_env, tmp_path):
    server = ServerProcess({**process_env, "IMAGE_MODEL": "openai/scripted-images"}, tmp_path / "server.log").start()
    try:
        drawers = [c for c in psutil.Process(server.process.pid).children() if "picture-worker" in c.cmdline()]
        assert len(drawers) == 1, f"the server's children: {psutil.Process(server.process.pid).children()}"
        os.kill(server.process.pid, signal.SIGKILL)  # not its process group: the child is left alone
        try:
            drawers[0].wait(timeout=15)
        except psutil.TimeoutExpired:
            pytest.fail("the picture process went on after its server was killed")
    finally:
        server.kill()
