"""A choice's way to the model: one read checks it, the model is asked while the choice and
the next chapter (already marked as being written) are stored, and the game's rules hold
when requests race or the store fails."""
from __future__ import annotations

import asyncio
import json

import httpx

from service.domain.lifecycle import HandOffState
from tests.support import player
from tests.support.database import rows

WORLD, TOPIC = "capwood-hollow", "plants"


def _chapter_one(client: httpx.Client) -> player.ChapterPage:
    return player.read_chapter(client, player.start(client, WORLD, TOPIC))


def _streams(scripted_model) -> int:
    return len([r for r in scripted_model.requests if r["stream"]])


def test_when_a_choice_is_answered_then_the_next_chapter_is_already_stored_as_being_written(
    client, scripted_model, database_url
):
    page = _chapter_one(client)
    scripted_model.script.ttft = 1.0

    stream_url = player.choose_htmx(client, page.action, page.choices[0])

    assert rows(database_url, "SELECT number, state FROM chapters ORDER BY number") == [(1, "complete"), (2, "writing")]
    assert rows(database_url, "SELECT choice FROM answers") == [(page.choices[0],)]
    assert player.read_sse(client, stream_url).names[-3:] == ["replace-content", "choices", "close"]
    assert rows(database_url, "SELECT state FROM chapters WHERE number = 2") == [("complete",)]


async def _post_together(base_url: str, cookies, action: str, choices: list[str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, cookies=cookies, timeout=30) as racing:
        return await asyncio.gather(*(
            racing.post(action, data={"choice": choice}, headers={"HX-Request": "true"}) for choice in choices
        ))


async def test_when_the_same_choice_is_sent_twice_at_once_then_one_generation_serves_both(
    server, client, scripted_model
):
    page = _chapter_one(client)
    before = _streams(scripted_model)

    answers = await _post_together(server.base_url, client.cookies, page.action, [page.choices[1]] * 2)

    assert [a.status_code for a in answers] == [200, 200]
    assert player.sse_url(answers[0].text) == player.sse_url(answers[1].text)
    await asyncio.to_thread(player.read_sse, client, player.sse_url(answers[0].text))
    assert _streams(scripted_model) == before + 1, "a second generation was started"


async def test_when_two_tabs_choose_differently_at_once_then_one_choice_wins_and_one_chapter_is_written(
    server, client, scripted_model, database_url
):
    page = _chapter_one(client)
    before = _streams(scripted_model)

    answers = await _post_together(server.base_url, client.cookies, page.action, page.choices[:2])

    assert sorted(a.status_code for a in answers) == [200, 409]
    winner = page.choices[[a.status_code for a in answers].index(200)]
    assert rows(database_url, "SELECT choice FROM answers") == [(winner,)]
    await asyncio.to_thread(player.read_sse, client, player.sse_url(answers[0].text if answers[0].is_success
                                                                     else answers[1].text))
    assert _streams(scripted_model) == before + 1, "the losing choice started a generation too"


def test_when_storing_a_choice_fails_then_its_generation_is_called_off_and_the_choice_can_be_made_again(
    server, client, scripted_model, database_url, monkeypatch
):
    page = _chapter_one(client)
    services = server.app.state.services
    store_choice = services.store.record_choice

    async def failing(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(services.store, "record_choice", failing)
    assert client.post(page.action, data={"choice": page.choices[0]}).status_code == 500
    adventure_id = page.url.split("/")[2]
    assert services.writer.running(adventure_id, 2) is None, "the called-off generation can still be followed"
    assert rows(database_url, "SELECT count(*) FROM answers")[0][0] == 0
    assert rows(database_url, "SELECT number FROM chapters") == [(1,)]

    monkeypatch.setattr(services.store, "record_choice", store_choice)
    moved = client.post(page.action, data={"choice": page.choices[0]})
    assert moved.status_code == 303
    chapter_two = player.read_chapter(client, moved.headers["location"])
    assert len(chapter_two.choices) == 3 and len(chapter_two.text.split()) > 30


def test_when_a_chapter_is_stored_as_being_written_but_nothing_writes_it_then_its_page_writes_it(
    client, database_url
):
    page = _chapter_one(client)
    adventure_id = page.url.split("/")[2]
    second_type = json.loads(rows(database_url, "SELECT plan FROM adventures")[0][0])[1]
    # What a move leaves when it is cut off between storing the choice and starting the chapter.
    rows(database_url, "INSERT INTO answers (adventure_id, chapter_number, choice, created_at) "
                       "VALUES (?, 1, ?, CURRENT_TIMESTAMP)", adventure_id, page.choices[2])
    rows(database_url, "INSERT INTO chapters (adventure_id, number, type, state, text, choices, "
                       "quality, created_at) VALUES (?, 2, ?, 'writing', '', '[]', '{}', CURRENT_TIMESTAMP)",
         adventure_id, second_type)

    chapter_two = player.read_chapter(client, page.url.replace("/chapters/1", "/chapters/2"))

    assert len(chapter_two.choices) == 3 and len(chapter_two.text.split()) > 30
    assert rows(database_url, "SELECT state FROM chapters WHERE number = 2") == [("complete",)]


def test_when_a_choice_is_stored_then_the_model_already_has_the_chapters_request(
    server, client, scripted_model, monkeypatch
):
    page = _chapter_one(client)
    services = server.app.state.services
    store_choice, when_stored = services.store.record_choice, []

    async def noting(answer, *args, **kwargs):
        generation = services.writer.running(answer.adventure_id, answer.chapter_number + 1)
        when_stored.append((_streams(scripted_model), generation.handoff.state))
        return await store_choice(answer, *args, **kwargs)

    monkeypatch.setattr(services.store, "record_choice", noting)
    before = _streams(scripted_model)
    player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))

    assert when_stored == [(before + 1, HandOffState.ASKED)], "the choice's write went ahead of the model's request"


def test_when_the_server_has_started_then_its_warm_up_left_nothing_in_the_store(client, database_url):
    assert client.get("/").status_code == 200
    for table in ("adventures", "chapters", "answers", "jobs"):
        assert rows(database_url, f"SELECT count(*) FROM {table}") == [(0,)], table
