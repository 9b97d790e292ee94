"""The cap on chapters written at once: past it a chapter waits its turn without calling the
model, its page (and its htmx fragment) says it is waiting for a storyteller, and once a
storyteller is free it streams as usual, with only the contract's events."""
from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from bs4 import BeautifulSoup

from service.config import Settings
from tests.conftest import scripted_settings
from tests.support import player
from tests.support.database import wait_until

WORLD, TOPIC = "skyshelf-library", "plants"
WAITING = "Waiting for a storyteller"


@pytest.fixture
def settings(scripted_model, database_url) -> Settings:
    return scripted_settings(scripted_model, database_url, max_concurrent_chapters=1)


@pytest.fixture
def second(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as other:
        yield other


def _streamed_requests(model) -> list[dict]:
    return [r for r in list(model.requests) if r["stream"]]


def _hold_the_storyteller(model) -> None:
    """The next chapter request stalls 2 s before its first token, holding the one slot."""
    model.script.update(stall_before_first=True, stall_seconds=2.0, fail_times=1, fault_scope="stream")


def test_when_every_storyteller_is_busy_then_the_page_says_waiting_and_the_chapter_follows_without_javascript(
    client, second, scripted_model
):
    _hold_the_storyteller(scripted_model)
    player.start(client, WORLD, TOPIC)
    wait_until(lambda: len(_streamed_requests(scripted_model)) == 1, 10, "the first chapter never reached the model")
    url = player.start(second, WORLD, TOPIC)

    with second.stream("GET", url) as response:
        pieces = response.iter_text()
        head = ""
        while WAITING not in head:
            head += next(pieces)
        asked_while_waiting = len(_streamed_requests(scripted_model))
        html = head + "".join(pieces)

    assert WAITING in BeautifulSoup(head, "html.parser").get_text()
    assert asked_while_waiting == 1, "a chapter past the cap called the model"
    page = player.ChapterPage.parse(url, html)
    assert len(page.choices) == 3 and len(page.text.split()) > 30
    first, then = _streamed_requests(scripted_model)[:2]
    assert then["received"] >= first["finished"], "the waiting chapter was written beside the first one"


def test_when_every_storyteller_is_busy_then_the_htmx_fragment_says_waiting_and_the_stream_keeps_its_events(
    client, second, scripted_model
):
    pages = [player.read_chapter(c, player.start(c, WORLD, TOPIC)) for c in (client, second)]
    _hold_the_storyteller(scripted_model)
    asked = len(_streamed_requests(scripted_model))
    first = client.post(pages[0].action, data={"choice": pages[0].choices[0]}, headers={"HX-Request": "true"})
    wait_until(lambda: len(_streamed_requests(scripted_model)) == asked + 1, 10, "the held chapter never started")

    fragment = second.post(pages[1].action, data={"choice": pages[1].choices[0]}, headers={"HX-Request": "true"})
    result = player.read_sse(second, player.sse_url(fragment.text))

    soup = BeautifulSoup(fragment.text, "html.parser")
    assert WAITING in soup.select_one("#chapter-waiting").get_text()
    assert soup.select_one("#chapter-text").get_text() == "", "the waiting note is inside the chapter's text"
    assert WAITING not in BeautifulSoup(first.text, "html.parser").get_text()
    chunks = result.names.count("chunk")
    assert chunks > 0 and result.names == ["chunk"] * chunks + ["replace-content", "choices", "close"]


def test_when_the_cap_is_not_set_then_the_embedded_model_writes_one_chapter_at_a_time_and_others_many():
    assert Settings(_env_file=None).chapter_capacity == 1
    assert Settings(_env_file=None, llm_model="openai/gpt-4o-mini").chapter_capacity == 100
    assert Settings(_env_file=None, llm_model="openai/gpt-4o-mini", max_concurrent_chapters=0).chapter_capacity == 0
