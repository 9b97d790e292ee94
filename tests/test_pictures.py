"""Pictures with the scripted model's images endpoint: each chapter's slot only ever holds
that chapter's own picture (also when the player clicks fast and streams reconnect), a
failed picture leaves no <img>, pictures are served only to their adventure's owner, and
what a model wrote passes the child-safety screen before it reaches a prompt or an alt."""
from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import io
import json
import re
import time
from types import SimpleNamespace

import httpx
import psutil
import pytest
from bs4 import BeautifulSoup
from PIL import Image

from service.config import Settings
from service.domain.lifecycle import ChapterState
from service.domain.pictures import SlotState
from service.domain.story import CHAPTER_COUNT
from service.jobs.picture_news import PictureNews, RecentPictures
from service.llm.images import Drawing, ImageClient
from service.runtime import create_app
from service.store.jobs import JobQueue
from service.store.pictures import ChapterPictures, PictureStore, Shown
from service.web import pictures as web_pictures
from service.web.pictures import RECHECK_SECONDS
from tests.conftest import picture_settings, scripted_settings
from tests.support import player
from tests.support.database import rows, wait_until
from tests.support.live_server import LiveServer
from tests.support.scripted_replies import find_request_tag, scripted_png, split_chunks

WORLD, TOPIC = "capwood-hollow", "solar-system"


pytestmark = pytest.mark.usefixtures("litellm_loaded")


@pytest.fixture(autouse=True)
def idle_streams_end_soon(monkeypatch):
    """A page's picture stream ends after this long without news (900 s in use): a test
    whose picture never comes fails in seconds, not minutes."""
    monkeypatch.setattr(web_pictures, "IDLE_SECONDS", 10.0)


@pytest.fixture
def settings(scripted_model, database_url) -> Settings:
    return picture_settings(scripted_model, database_url, job_backoff_seconds=0.2, summary_wait_seconds=0.5)


def _jobs(database_url: str, kind: str) -> list[tuple]:
    return rows(database_url, "SELECT chapter_number, state FROM jobs WHERE kind = ? ORDER BY chapter_number", kind)


def _all_done(database_url: str, kind: str, count: int):
    jobs = _jobs(database_url, kind)
    return len(jobs) == count and all(state in ("done", "failed") for _, state in jobs)


def _slot(html: str, number: int):
    slots = BeautifulSoup(html, "html.parser").select("[data-image-chapter]")
    assert [s["data-image-chapter"] for s in slots] == [str(number)], f"slots on chapter {number}'s page: {slots}"
    return slots[0]


def _drawn_from(client: httpx.Client, src: str) -> str:
    """The prompt the served picture was drawn from (the scripted PNG carries it)."""
    response = client.get(src)
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/"), (
        f"{src} answered {response.status_code} {response.headers.get('content-type')}")
    with Image.open(io.BytesIO(response.content)) as picture:
        picture.load()
        return picture.text["prompt"]


def _adventure_url(page_url: str) -> str:
    return page_url.rsplit("/chapters/", 1)[0]


def _picture_of(number: int):
    """For read_sse's `until`: the event that fills chapter `number`'s slot."""
    return lambda event: event.event == "picture" and f'id="chapter-picture-{number}"' in event.data


def _swapped(events) -> dict[str, str]:
    """Each slot that a stream's picture events fill (by its id), with its <img>'s src."""
    swaps = BeautifulSoup("".join(e.data for e in events if e.event == "picture"), "html.parser")
    return {element["id"]: element.img["src"] for element in swaps.select("[hx-swap-oob]")}


@contextlib.contextmanager
def _page_stream(client: httpx.Client, url: str, until):
    """A page's picture stream, read from now on in a thread of its own (as a browser keeps it
    open while its player plays) until `until`: a future of its SseResult."""
    with httpx.Client(base_url=client.base_url, cookies=client.cookies, timeout=30) as browser, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:  # the reading ends before its client closes
        yield pool.submit(player.read_sse, browser, url, until=until)


def test_when_a_chapter_is_finished_then_its_slot_and_its_choices_hold_their_pictures_served_for_good(
    client, scripted_model, database_url
):
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    slot = _slot(page.html, 1)
    assert slot.find("img") is None, "the slot of a chapter just written already holds an <img>"
    wait_until(lambda: _all_done(database_url, "picture", 1) and _all_done(database_url, "option-pictures", 1),
               20, "the pictures were not drawn")

    html = client.get(page.url).text
    img = _slot(html, 1).find("img")
    assert img is not None and img["alt"].strip(), f"the finished chapter's slot holds {_slot(html, 1)}"
    assert img["alt"] in _drawn_from(client, img["src"])
    options = BeautifulSoup(html, "html.parser").select("#choices .choice-with-picture")
    assert len(options) == 3 and all(o.select_one(".option-picture img")["alt"] for o in options)
    assert [o.select_one("button[name=choice]")["value"] for o in options] == page.choices

    first = client.get(img["src"])
    assert "immutable" in first.headers["cache-control"] and first.headers["etag"]
    again = client.get(img["src"], headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_when_the_player_clicks_fast_and_streams_reconnect_then_each_slot_holds_only_its_own_chapters_picture(
    client, scripted_model, database_url
):
    scripted_model.script.update(tag_replies=True, image_latency=1.0)
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    adventure = _adventure_url(page.url)
    action, choices = page.action, page.choices
    # The page's one picture stream, open while the player clicks on: it follows each chapter
    # the choices swap in, and ends up with the last one's picture.
    with _page_stream(client, f"{adventure}/chapters/1/pictures", _picture_of(4)) as followed:
        for number in (2, 3, 4):  # on as soon as the choices are there, long before any picture
            result = player.read_sse(client, player.choose_htmx(client, action, choices[0]))
            action, choices = player.choices_from_html(result.data("choices"))
            if number == 3:  # a stream that drops before its picture comes: the browser reconnects
                with client.stream("GET", f"{adventure}/chapters/2/pictures") as dropped:
                    assert dropped.status_code == 200
    tags = {n: find_request_tag(player.read_chapter(client, f"{adventure}/chapters/{n}").text) for n in range(1, 5)}
    assert all(tags.values()) and len(set(tags.values())) == 4, f"chapters' request tags: {tags}"
    wait_until(lambda: _all_done(database_url, "picture", 4) and _all_done(database_url, "option-pictures", 1), 20,
               "the pictures were not drawn")
    shown = {number: _slot(client.get(f"{adventure}/chapters/{number}").text, number).find("img")
             for number in range(1, 5)}
    assert all(shown.values()), f"chapters without a picture: {shown}"
    followed = _swapped(followed.result().events)
    assert followed.get("chapter-picture-4") == shown[4]["src"], f"the page's stream sent {followed}"

    for number in range(1, 5):  # each chapter's page, loaded once all is drawn
        events = player.read_sse(client, f"{adventure}/chapters/{number}/pictures", limit=4 if number == 1 else 1)
        targets = _swapped(events.events)
        assert f"chapter-picture-{number}" in targets
        assert targets.keys() <= {f"chapter-picture-{number}", *(f"option-picture-{n}" for n in (1, 2, 3))}
        assert number == 1 or targets.keys() == {f"chapter-picture-{number}"}, f"chapter {number}'s page got {targets}"
        assert targets[f"chapter-picture-{number}"] == shown[number]["src"]
    for number, img in shown.items():
        # Whatever a stream sent into a chapter's slot is what its page shows, drawn from its own story.
        assert followed.get(f"chapter-picture-{number}", img["src"]) == img["src"], f"the page's stream sent {followed}"
        drawn_from = _drawn_from(client, img["src"])
        others = [tag for n, tag in tags.items() if n != number]
        assert f"[{tags[number]}]" in drawn_from and not any(f"[{tag}]" in drawn_from for tag in others), (
            f"chapter {number}'s slot shows a picture drawn from {drawn_from!r}")


def test_when_a_choice_is_made_then_the_pages_own_picture_stream_brings_the_next_chapters_picture(
    client, scripted_model, database_url
):
    # A choice opens no picture stream beside the text's own as it starts: the page's one
    # stream, outside the chapter that the choices swap, was opened once the page had loaded.
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    adventure = _adventure_url(page.url)
    stream = BeautifulSoup(page.html, "html.parser").select_one("#picture-stream[hx-ext=sse]")
    assert stream is not None and stream["sse-connect"] == f"{adventure}/chapters/1/pictures"
    assert stream.find_parent(id="chapter") is None, "the picture stream would go with the chapter's swap"
    with _page_stream(client, stream["sse-connect"], _picture_of(2)) as followed:
        fragment = client.post(page.action, data={"choice": page.choices[0]}, headers={"HX-Request": "true"}).text
        opened = [element["sse-connect"] for element in BeautifulSoup(fragment, "html.parser").select("[sse-connect]")]
        assert opened == [f"{adventure}/chapters/2/stream"], f"the fragment opens {opened}"
        assert _slot(fragment, 2).find("img") is None
        events = player.read_sse(client, player.sse_url(fragment))
        assert len(BeautifulSoup(events.data("choices"), "html.parser").select("button[name=choice]")) == 3

    swapped = _swapped(followed.result().events)
    assert swapped.get("chapter-picture-2") == _slot(client.get(f"{adventure}/chapters/2").text, 2).img["src"]


def test_when_the_image_model_always_fails_then_the_chapter_has_no_picture_no_img_and_the_game_goes_on(
    server, scripted_model, database_url, monkeypatch
):
    scripted_model.script.update(fail_status=500, fault_scope="image")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
        wait_until(lambda: [s for _, s in _jobs(database_url, "picture")] == ["failed"]
                   and [s for _, s in _jobs(database_url, "option-pictures")] == ["failed"],
                   30, "the picture jobs did not fail for good")
        html = client.get(page.url).text
        slot = _slot(html, 1)
        assert slot.has_attr("hidden")
        assert BeautifulSoup(html, "html.parser").select("#chapter img") == []
        monkeypatch.setattr(web_pictures, "IDLE_SECONDS", 2.0)  # until the page's stream gives up
        assert player.read_sse(client, f"{_adventure_url(page.url)}/chapters/1/pictures").names == []
        drawn = [r for r in scripted_model.requests if r.get("kind") == "IMAGE"]
        assert len(drawn) == 4 * 3, f"{len(drawn)} image calls for 4 pictures tried 3 times each: retried twice over"

        moved = client.post(page.action, data={"choice": page.choices[0]})
        assert moved.status_code == 303
        assert len(player.read_chapter(client, moved.headers["location"]).choices) == 3
    attempts = rows(database_url, "SELECT attempts FROM jobs WHERE kind = 'picture' AND chapter_number = 1")
    assert attempts == [(3,)], f"the failed picture was tried {attempts} times, not JOB_ATTEMPTS (3)"


def test_when_one_of_the_choices_pictures_fails_then_the_others_are_kept_and_only_it_is_drawn_again(
    client, scripted_model, database_url
):
    # The scene's picture is asked for after the choices' (its helper call takes 1 s): the
    # first image request, which fails, is one of the choices'.
    scripted_model.script.update(fail_status=500, fail_times=1, fault_scope="image",
                                 helper_latencies={"PICTURE": 1.0})
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    wait_until(lambda: _all_done(database_url, "option-pictures", 1) and _all_done(database_url, "picture", 1), 20,
               "the pictures were not drawn")

    assert rows(database_url, "SELECT attempts, state FROM jobs WHERE kind = 'option-pictures'") == [(2, "done")]
    assert rows(database_url, "SELECT count(*) FROM pictures WHERE option > 0") == [(3,)]
    images = [r for r in scripted_model.requests if r.get("kind") == "IMAGE"]
    assert len(images) == 5, f"{len(images)} image calls: three choices, the scene, and the failed choice again"
    options = BeautifulSoup(client.get(page.url).text, "html.parser").select("#choices .option-picture img")
    assert len(options) == 3


def test_when_another_browser_asks_for_a_picture_or_its_stream_then_it_answers_404(
    server, scripted_model, database_url
):
    with httpx.Client(base_url=server.base_url, timeout=30) as owner:
        page = player.read_chapter(owner, player.start(owner, WORLD, TOPIC))
        wait_until(lambda: _all_done(database_url, "picture", 1), 20, "the picture was not drawn")
        src = _slot(owner.get(page.url).text, 1).find("img")["src"]
        adventure = _adventure_url(page.url)
        assert owner.get(src).status_code == 200
        assert owner.get(re.sub(r"[0-9a-f]{64}$", "0" * 64, src)).status_code == 404
    with httpx.Client(base_url=server.base_url, timeout=30) as stranger:
        stranger.get("/")  # a browser of its own, with its own cookie
        for url in (src, f"{adventure}/chapters/1/pictures"):
            response = stranger.get(url)
            assert response.status_code == 404 and not response.headers["content-type"].startswith("image/"), url


def test_when_the_helpers_scene_holds_an_unfit_word_then_it_reaches_neither_the_prompt_nor_the_alt(
    client, scripted_model, database_url
):
    scripted_model.script.update(helper_replies={"PICTURE": (
        "Scene: Mira sips a cold beer on the mossy bank. Mira waves at the fireflies carrying "
        "tiny envelopes over the glowing mushroom caps.")})
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    wait_until(lambda: _all_done(database_url, "picture", 1), 20, "the picture was not drawn")

    prompts = [r["prompt"] for r in scripted_model.requests if r.get("kind") == "IMAGE"]
    assert len(prompts) == 4 and not any("beer" in p.casefold() for p in prompts), prompts
    img = _slot(client.get(page.url).text, 1).find("img")
    assert "fireflies" in img["alt"] and "beer" not in img["alt"].casefold()


def test_when_nothing_of_the_scene_is_fit_then_no_picture_is_drawn_and_the_slot_is_hidden(
    client, scripted_model, database_url
):
    scripted_model.script.update(helper_replies={"PICTURE": "Scene: Mira drinks beer and wine by the pond."},
                                 reply_override="Mira drank a beer by the pond with her friends all night.")
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    wait_until(lambda: _all_done(database_url, "picture", 1), 20, "the picture job did not end")

    assert [s for _, s in _jobs(database_url, "picture")] == ["done"]
    assert rows(database_url, "SELECT count(*) FROM pictures WHERE option = 0") == [(0,)]
    prompts = [r["prompt"] for r in scripted_model.requests if r.get("kind") == "IMAGE"]
    assert not any("beer" in p.casefold() or "wine" in p.casefold() for p in prompts)
    slot = _slot(client.get(page.url).text, 1)
    assert slot.has_attr("hidden") and slot.find("img") is None


def test_when_the_summary_page_is_shown_then_each_chapter_has_its_picture_beside_its_title(
    client, scripted_model, database_url
):
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    moved = client.post(page.action, data={"choice": page.choices[0]})
    player.read_chapter(client, moved.headers["location"])
    wait_until(lambda: _all_done(database_url, "picture", 2), 20, "the pictures were not drawn")

    summary = BeautifulSoup(client.get(f"{_adventure_url(page.url)}/summary").text, "html.parser")
    for number in (1, 2):
        item = summary.select_one(f'[data-chapter="{number}"]')
        img = item.select_one("img")
        assert img is not None and img["alt"] and item.select_one("h3").get_text(strip=True)
        chapter_src = _slot(client.get(f"{_adventure_url(page.url)}/chapters/{number}").text, number).img["src"]
        assert img["src"] == chapter_src
    assert not summary.select("[data-image-chapter]")


def test_when_no_image_model_is_set_then_no_page_has_a_slot_and_no_picture_is_asked_for(
    scripted_model, database_url
):
    with LiveServer(create_app(scripted_settings(scripted_model, database_url))) as live, \
            httpx.Client(base_url=live.base_url, timeout=30) as client:
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))  # streamed as it is written
        fragment = client.post(page.action, data={"choice": page.choices[0]}, headers={"HX-Request": "true"}).text
        events = player.read_sse(client, player.sse_url(fragment))
        adventure = _adventure_url(page.url)
        wait_until(lambda: rows(database_url, "SELECT count(*) FROM jobs WHERE state = 'done'") == [(4,)], 20,
                   "the summaries and characters were not written")
        pages = [page.html, fragment, events.data("choices"), client.get(page.url).text,
                 client.get(f"{adventure}/chapters/2").text, client.get(f"{adventure}/summary").text]
        stream = client.get(f"{adventure}/chapters/1/pictures")

    for html in pages:
        soup = BeautifulSoup(html, "html.parser")
        assert not soup.select("[data-image-chapter], .option-picture, img, #picture-stream"), html[:300]
    assert stream.status_code == 404
    assert rows(database_url, "SELECT DISTINCT kind FROM jobs ORDER BY kind") == [("characters",), ("summary",)]
    assert not [r for r in scripted_model.requests if r.get("kind") in ("IMAGE", "PICTURE")]


def test_when_a_chapters_story_is_written_then_its_picture_is_asked_for_before_the_chapter_closes(
    client, scripted_model, database_url
):
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    wait_until(lambda: _all_done(database_url, "picture", 1) and _all_done(database_url, "option-pictures", 1),
               20, "the first chapter's pictures were not drawn")
    # The model pauses two seconds once its choices block has begun: time enough for the scene
    # and the image request, which go out as soon as the story's text is complete.
    reply = ("Mira and the owl flew over the silver forest toward the tower. The moon was round and bright."
             "\n\n<CHOICES>\nChoice A: Land on the tower\nChoice B: Circle the forest\nChoice C: Follow the owl"
             "\n</CHOICES>")
    begun = next(n for n, chunk in enumerate(split_chunks(reply)) if "<CHOICES>" in chunk)
    scripted_model.script.update(reply_override=reply, stall_after=begun + 1, stall_seconds=2.0, fail_times=1,
                                 fault_scope="stream")
    asked = len([r for r in scripted_model.requests if r["kind"] == "IMAGE"])
    result = player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))
    closed = next(e.at for e in result.events if e.event == "close")

    images = [r for r in scripted_model.requests if r["kind"] == "IMAGE"][asked:]
    assert images and images[0]["received"] < closed, "the picture was only asked for after the chapter closed"
    wait_until(lambda: _all_done(database_url, "picture", 2), 20, "the picture job did not finish")
    assert len([r for r in scripted_model.requests if r["kind"] == "IMAGE"][asked:]) == 1, \
        "the job drew the picture again instead of taking the one begun early"
    img = _slot(client.get(page.url.rsplit("/", 1)[0] + "/2").text, 2).find("img")
    assert img is not None and img["alt"] in _drawn_from(client, img["src"])


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "litellm"])
@pytest.mark.parametrize("reply", ["b64", "url"])
async def test_when_the_image_model_sends_a_large_picture_then_every_byte_of_it_is_kept(
    scripted_model, database_url, direct, reply
):
    """A picture of a few megabytes arrives in many pieces, in the reply or at a URL; either
    way, and by either way of calling the model, all of it is kept."""
    scripted_model.script.update(image_reply=reply, image_padding=3 * 1024 * 1024)
    images = ImageClient(scripted_settings(scripted_model, database_url, image_model="openai/scripted-images"),
                         direct=direct)
    await images.load()
    try:
        drawing = await images.draw("a lighthouse at dawn")
    finally:
        await images.close()

    assert drawing.content_type == "image/png" and len(drawing.data) > 3 * 1024 * 1024
    with Image.open(io.BytesIO(drawing.data)) as picture:
        assert picture.text["prompt"] == "a lighthouse at dawn"


async def test_when_the_image_server_drops_idle_connections_then_the_next_picture_goes_on_a_new_one(database_url):
    # Regression: the image client kept idle connections for 15 s, the scripted model's server
    # (uvicorn) 5 s: a picture asked for on one the server was dropping failed ("Can not write
    # request body"), and waited for its job's retry behind the choices' pictures (16 s late).
    # This server drops a connection reused after 3.5 s idle, without an answer.
    idle_limit, answered = 3.5, []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        last = None
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                size = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                prompt = json.loads(await reader.readexactly(size))["prompt"]
                if last is not None and time.monotonic() - last > idle_limit:
                    break  # dropped: the request goes unanswered
                body = json.dumps({"data": [{"b64_json": base64.b64encode(scripted_png(1, prompt)).decode()}]})
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             + f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
                await writer.drain()
                answered.append(prompt)
                last = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings(database_url=database_url, llm_model="openai/scripted", image_model="openai/scripted-images",
                        image_api_base=f"http://127.0.0.1:{port}/v1")
    images = ImageClient(settings, direct=True)
    try:
        await images.draw("a lighthouse at dawn")
        await asyncio.sleep(idle_limit + 0.5)
        drawing = await images.draw("a fox in the snow")
    finally:
        await images.close()
        server.close()
    assert answered == ["a lighthouse at dawn", "a fox in the snow"]
    with Image.open(io.BytesIO(drawing.data)) as picture:
        assert picture.text["prompt"] == "a fox in the snow"


def test_when_the_choices_pictures_never_come_then_a_chapters_picture_begun_early_is_stored_all_the_same(
    scripted_model, database_url
):
    # Regression: a scene drawn early was stored only once a picture worker took its job, so
    # the choices' pictures of new adventures (three to a job) held chapters' pictures back.
    # Here the one worker is free, and the choices' three pictures, begun with the adventure,
    # never come.
    scripted_model.script.update(stall_before_first=True, fail_times=3, fault_scope="image",
                                 helper_latencies={"PICTURE": 1.0})  # the scene's picture is asked for fourth
    settings = picture_settings(scripted_model, database_url, image_concurrency=1)
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.base_url, timeout=30) as client:
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
        wait_until(lambda: _all_done(database_url, "picture", 1), 20,
                   "the chapter's picture waited for the worker that the choices' pictures hold")
        assert _jobs(database_url, "option-pictures") == [(1, "pending")], "the choices' pictures came"
        img = _slot(client.get(page.url).text, 1).find("img")
        assert img is not None and img["alt"] in _drawn_from(client, img["src"])


def test_when_an_adventure_begins_then_its_choices_pictures_are_drawn_and_stored_without_a_workers_claim(
    scripted_model, database_url, monkeypatch
):
    # A claim is two of the database's round trips, and its job's end a third: at 50 players
    # the choices' jobs were a third of the pictures' database work, beside the streams.
    claimed = []
    claim = JobQueue.claim

    async def counted(queue, *args, **kwargs):
        job = await claim(queue, *args, **kwargs)
        claimed.extend([job.kind] if job is not None else [])
        return job

    monkeypatch.setattr(JobQueue, "claim", counted)
    with LiveServer(create_app(picture_settings(scripted_model, database_url))) as live, \
            httpx.Client(base_url=live.base_url, timeout=30) as client:
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
        wait_until(lambda: _all_done(database_url, "option-pictures", 1), 20, "the choices' pictures were not drawn")
        options = BeautifulSoup(client.get(page.url).text, "html.parser").select("#choices .option-picture img")
        assert len(options) == 3
        for img in options:
            assert img["alt"] and _drawn_from(client, img["src"])
    assert "option-pictures" not in claimed, f"a worker claimed the choices' pictures: {claimed}"
    assert rows(database_url, "SELECT attempts, state FROM jobs WHERE kind = 'option-pictures'") == [(1, "done")]


def _follow_second_chapters_picture(scripted_model, database_url, monkeypatch,
                                    fail_first: bool = False) -> tuple[list, float, str, str]:
    """Play to chapter 2 with the first chapter's page's picture stream open, as a browser
    keeps it, while the image model takes a second (`fail_first`: and fails the chapter's
    first drawing), and fetch the picture: (the store's reads for the chapter's pictures and
    for the bytes, seconds from the chapter's `close` to its picture, the picture's alt, its
    prompt). Another browser asking for the picture gets 404."""
    looks = []
    looked, read = PictureStore.chapter_pictures, PictureStore.picture

    async def counted(store, adventure_id, number, background=False):
        looks.append(number)
        return await looked(store, adventure_id, number, background)

    async def counted_read(store, adventure_id, digest, background=False):
        looks.append("bytes")
        return await read(store, adventure_id, digest, background)

    monkeypatch.setattr(PictureStore, "chapter_pictures", counted)
    monkeypatch.setattr(PictureStore, "picture", counted_read)
    scripted_model.script.update(image_latency=1.0)
    with LiveServer(create_app(picture_settings(scripted_model, database_url, job_backoff_seconds=0.2))) as live, \
            httpx.Client(base_url=live.base_url, timeout=30) as client:
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
        if fail_first:
            wait_until(lambda: _all_done(database_url, "picture", 1) and _all_done(database_url, "option-pictures", 1),
                       20, "the first chapter's pictures were not drawn")
            scripted_model.script.update(fail_status=500, fail_times=1, fault_scope="image")
        looks.clear()
        with _page_stream(client, f"{_adventure_url(page.url)}/chapters/1/pictures", _picture_of(2)) as followed:
            events = player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))
        closed = next(event.at for event in events.events if event.event == "close")
        picture = next(event for event in followed.result().events if _picture_of(2)(event))
        took = picture.at - closed
        img = BeautifulSoup(picture.data, "html.parser").find("img")
        assert img is not None and img["alt"]
        drawn_from = _drawn_from(client, img["src"])
        with httpx.Client(base_url=live.base_url, timeout=30) as stranger:
            assert stranger.get(img["src"]).status_code == 404, "another browser got the picture"
        return [n for n in looks if n in (2, "bytes")], took, img["alt"], drawn_from


def test_when_a_chapters_picture_is_drawn_here_then_its_stream_and_its_bytes_need_no_read_of_the_store(
    scripted_model, database_url, monkeypatch
):
    # The news that the picture is stored says what its slot shows, and its bytes are still
    # in memory: at 50 players each read waited for a database thread beside the streams.
    reads, _took, alt, prompt = _follow_second_chapters_picture(scripted_model, database_url, monkeypatch)
    assert reads == [], f"reads of the store for a picture drawn here: {reads}"
    assert alt in prompt


def test_recent_pictures_are_kept_within_their_bytes_and_their_time():
    recent = RecentPictures(keep_seconds=0.2, max_bytes=25)
    first, second, third = (Drawing(bytes([n]) * 10, "image/png") for n in range(3))
    recent.keep("a", 2, first)
    recent.keep("a", 3, second)
    assert recent.get("a", first.digest) == (2, first) and recent.get("b", first.digest) is None
    recent.keep("a", 4, third)  # 30 bytes: the oldest goes
    assert recent.get("a", first.digest) is None and recent.get("a", third.digest) == (4, third)
    time.sleep(0.25)
    assert recent.get("a", third.digest) is None, "a picture was kept past its time"


def test_when_a_chapters_early_drawing_fails_then_its_stream_shows_the_picture_its_job_draws_again(
    scripted_model, database_url, monkeypatch
):
    looks, took, alt, prompt = _follow_second_chapters_picture(scripted_model, database_url, monkeypatch,
                                                               fail_first=True)
    assert looks, "the stream showed a picture it could only know of from the store without looking"
    assert took < RECHECK_SECONDS / 2, f"the picture drawn again came after {took:.1f} s: the stream slept on"
    assert alt in prompt


async def test_when_picture_news_comes_while_a_stream_looks_at_the_store_then_its_next_wait_returns_at_once():
    # Regression: news was kept only while a stream waited, so the news of a picture saved
    # during a stream's look was lost, and the picture came 15 s late (the recheck).
    news = PictureNews()
    with news.following("adventure") as wait, news.following("another") as other_wait:
        news.notify("adventure", 2)  # while the stream is busy looking, not waiting
        news.notify("adventure", 3)
        started = time.monotonic()
        assert await wait(5.0) == {2: None, 3: None}, "the news that came during the look was lost"
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        assert await wait(0.1) == {} and time.monotonic() - started >= 0.1, "one piece of news woke the stream twice"
        started = time.monotonic()
        assert await other_wait(0.1) == {} and time.monotonic() - started >= 0.1, "another adventure's news woke it"


class _StreamServices:
    """What a page's picture stream uses of the server: news, the chapters being written, the
    store's slots (`stored`, by chapter; each look is counted) and a swap's HTML."""

    def __init__(self) -> None:
        self.picture_news = PictureNews()
        self.written: set[int] = set()
        self.writer = SimpleNamespace(writing=lambda _adventure_id, number: number in self.written)
        self.stored: dict[int, ChapterPictures] = {}
        self.looks: list[int] = []
        self.pictures = SimpleNamespace(chapter_pictures=self._look)
        self.pages = SimpleNamespace(render=self._render)

    async def _look(self, _adventure_id: str, number: int, background: bool = False) -> ChapterPictures:
        self.looks.append(number)
        return self.stored[number]

    async def _render(self, _name: str, slot_id: str, image: dict) -> str:
        return f'<div id="{slot_id}" hx-swap-oob="innerHTML"><img src="{image["src"]}" alt="{image["alt"]}"></div>'


def _drawn(number: int) -> ChapterPictures:
    return ChapterPictures(number, ChapterState.COMPLETE, Shown("a", f"digest{number}", f"scene {number}"),
                           SlotState.READY)


async def test_a_pages_picture_stream_goes_on_to_the_chapter_its_choice_led_to_and_skips_the_one_left_behind():
    services = _StreamServices()
    services.stored[2] = ChapterPictures(2, ChapterState.COMPLETE, None, SlotState.PENDING)
    events = web_pictures.picture_events(services, SimpleNamespace(id="a"), 2)
    first = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.05)
    assert services.looks == [2] and not first.done(), "the page's chapter was not looked at, or sent something"

    services.written.add(3)  # the page's choice led on: chapter 3 is being written here
    services.picture_news.notify("a", 2, _drawn(2))  # and chapter 2's picture comes, too late for its slot
    await asyncio.sleep(0.05)
    assert not first.done(), "a picture went to the slot of a chapter the page has left"
    services.written.discard(3)
    services.picture_news.notify("a", 3, _drawn(3))

    event = await asyncio.wait_for(first, 1.0)
    assert event.event == "picture" and _swapped([event]) == {"chapter-picture-3": "/adventures/a/pictures/digest3"}
    assert services.looks == [2], "a look at the store for slots the news told of"
    await events.aclose()


async def test_a_pages_picture_stream_closes_once_the_last_chapters_pictures_are_shown(monkeypatch):
    services = _StreamServices()
    services.stored[CHAPTER_COUNT] = _drawn(CHAPTER_COUNT)
    events = [event async for event in web_pictures.picture_events(services, SimpleNamespace(id="a"), CHAPTER_COUNT)]
    assert [event.event for event in events] == ["picture", "close"]
    assert _swapped(events).keys() == {f"chapter-picture-{CHAPTER_COUNT}"}

    monkeypatch.setattr(web_pictures, "IDLE_SECONDS", 0.2)
    services.stored[CHAPTER_COUNT] = ChapterPictures(CHAPTER_COUNT, ChapterState.FAILED)  # to be tried again
    events = [event async for event in web_pictures.picture_events(services, SimpleNamespace(id="a"), CHAPTER_COUNT)]
    assert events == [], "the stream closed on a last chapter that failed: its retry's picture would not come"


async def test_a_pages_picture_stream_without_news_ends_without_close_for_the_browser_to_open_again(monkeypatch):
    monkeypatch.setattr(web_pictures, "IDLE_SECONDS", 0.2)
    services = _StreamServices()
    services.stored[2] = _drawn(2)
    started = time.monotonic()
    events = [event async for event in web_pictures.picture_events(services, SimpleNamespace(id="a"), 2)]
    assert [event.event for event in events] == ["picture"] and time.monotonic() - started < 2.0
    assert services.looks == [2], "a chapter whose pictures were all shown was looked at again without news"


def _picture_process() -> psutil.Process | None:
    """The picture process of the server running in this test's process."""
    for child in psutil.Process().children(recursive=True):
        try:
            if "picture-worker" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                return child
        except psutil.Error:
            continue
    return None


def test_when_the_picture_process_is_killed_while_it_draws_then_a_new_one_draws_the_pictures(
    scripted_model, database_url
):
    # The pictures are drawn in a process of their own, below the server's CPU priority, so
    # that the streams get the CPU first; killed, it is started again, and the drawings it
    # owed are tried again (their jobs' retries wait for it rather than use up their attempts).
    scripted_model.script.update(stall_before_first=True, fault_scope="image")  # every picture hangs
    settings = picture_settings(scripted_model, database_url, job_backoff_seconds=0.1)
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.base_url, timeout=30) as client:
        drawer = _picture_process()
        assert drawer is not None, "no picture process runs beside the server"
        assert drawer.nice() > psutil.Process().nice(), "the picture process runs at the server's priority"
        page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
        wait_until(lambda: len([r for r in scripted_model.requests if r.get("kind") == "IMAGE"]) == 4, 20,
                   "the four pictures were not all being drawn")
        scripted_model.script.update(stall_before_first=False)
        drawer.kill()
        wait_until(lambda: (again := _picture_process()) is not None and again.pid != drawer.pid, 20,
                   "no picture process was started again")
        wait_until(lambda: rows(database_url, "SELECT count(*) FROM pictures") == [(4,)], 30,
                   "the pictures the killed process was drawing were not drawn")
        img = _slot(client.get(page.url).text, 1).find("img")
        assert img is not None and img["alt"] in _drawn_from(client, img["src"])
