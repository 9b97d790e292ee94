"""What the contract promises about who may do what: cross-site POSTs get 403, another
browser gets 404, and bad input gets a clear 4xx that leaves the adventure playable."""
from __future__ import annotations

import httpx
import pytest
from bs4 import BeautifulSoup

from tests.support import player

WORLD, TOPIC = "frostpeak-observatory", "world-geography"


@pytest.fixture
def adventure(client) -> player.ChapterPage:
    return player.read_chapter(client, player.start(client, WORLD, TOPIC))


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.example"},
])
def test_when_a_post_comes_from_another_site_then_it_is_refused_with_403(client, adventure, headers):
    start = client.post("/", data={"story_category": WORLD, "lesson_topic": TOPIC}, headers=headers)
    choice = client.post(adventure.action, data={"choice": adventure.choices[0]}, headers=headers)

    assert start.status_code == 403 and choice.status_code == 403
    assert player.read_chapter(client, adventure.url).choices == adventure.choices


def test_when_a_post_comes_from_the_same_origin_then_it_is_accepted(client, server, adventure):
    response = client.post(adventure.action, data={"choice": adventure.choices[0]},
                           headers={"Origin": server.base_url, "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 303


def test_when_another_browser_asks_for_an_adventure_then_every_address_answers_404(client, server, adventure):
    base = adventure.url.rsplit("/chapters/", 1)[0]
    with httpx.Client(base_url=server.base_url) as stranger:
        stranger.get("/")  # a stranger with a cookie of its own
        answers = [
            stranger.get(base).status_code,
            stranger.get(adventure.url).status_code,
            stranger.get(adventure.url + "/stream").status_code,
            stranger.get(base + "/summary").status_code,
            stranger.post(adventure.action, data={"choice": adventure.choices[0]}).status_code,
            stranger.post(adventure.url + "/retry").status_code,
        ]
    assert answers == [404] * 6
    assert client.get(adventure.url).status_code == 200


def test_when_the_owner_cookie_is_set_then_it_is_httponly_and_samesite(server):
    with httpx.Client(base_url=server.base_url) as fresh:
        cookie = fresh.get("/").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


BAD_INPUTS = [
    # (name, how to send it, expected status, words the message must hold)
    ("unknown world", lambda c, a: c.post("/", data={"story_category": "atlantis", "lesson_topic": TOPIC}),
     400, "story world"),
    ("unknown topic", lambda c, a: c.post("/", data={"story_category": WORLD, "lesson_topic": "alchemy"}),
     400, "lesson topic"),
    ("missing fields", lambda c, a: c.post("/", data={}), 400, "story world"),
    ("a choice that was not offered", lambda c, a: c.post(a.action, data={"choice": "Fly to the moon"}),
     400, "not one of this chapter's choices"),
    ("no choice at all", lambda c, a: c.post(a.action, data={}), 400, "not one of this chapter's choices"),
    ("a chapter not reached", lambda c, a: c.post(a.action.replace("/chapters/1/", "/chapters/7/"),
                                                  data={"choice": a.choices[0]}), 404, "not been reached"),
    # Past the database's integers: refused before any read (it once reached SQLite, a 500).
    ("a chapter number past any integer", lambda c, a: c.get(a.url.replace("/chapters/1", f"/chapters/{10**30}")),
     404, "not been reached"),
    ("a choice for a chapter number past any integer", lambda c, a: c.post(
        a.action.replace("/chapters/1/", f"/chapters/{10**30}/"), data={"choice": a.choices[0]}), 404, "not been reached"),
    ("a stream of a chapter number past any integer", lambda c, a: c.get(
        a.url.replace("/chapters/1", f"/chapters/{10**30}") + "/stream"), 404, "not been reached"),
    ("an oversized body", lambda c, a: c.post(a.action, data={"choice": "x" * 40_000}), 413, "too large"),
    ("bytes that are not UTF-8", lambda c, a: c.post(
        a.action, content=b"choice=%FF%FE%FD", headers={"Content-Type": "application/x-www-form-urlencoded"}),
     400, "UTF-8"),
]


@pytest.mark.parametrize("send,status,words", [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_when_input_is_bad_then_a_clear_4xx_answers_and_the_adventure_plays_on(client, adventure, send, status,
                                                                               words):
    response = send(client, adventure)

    assert response.status_code == status, response.text[:300]
    assert words.lower() in BeautifulSoup(response.text, "html.parser").get_text().lower()
    moved = client.post(adventure.action, data={"choice": adventure.choices[2]})
    assert moved.status_code == 303
    assert player.read_chapter(client, moved.headers["location"]).choices


def test_when_a_chapter_already_answered_gets_another_choice_then_it_answers_409(client, adventure):
    assert client.post(adventure.action, data={"choice": adventure.choices[0]}).status_code == 303
    again = client.post(adventure.action, data={"choice": adventure.choices[1]})
    assert again.status_code == 409
    assert "already chose" in BeautifulSoup(again.text, "html.parser").get_text()
