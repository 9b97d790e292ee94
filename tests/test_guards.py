"""What the contract promises about who may do what: cross-site POSTs get 403, another
browser gets 404, and bad input gets a clear 4xx that leaves the adventure playable."""
from __future__ import annotations

import httpx
import pytest
from bs4 import BeautifulSoup

from service.runtime import create_app
from tests.conftest import scripted_settings
from tests.support import player
from tests.support.live_server import LiveServer

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


@pytest.mark.parametrize("forged", ["x" * 43, "a" * 20, "forged.signature", "%C3%BC." * 10])
def test_when_a_browser_brings_an_owner_cookie_the_server_did_not_issue_then_it_is_ignored(server, forged):
    with httpx.Client(base_url=server.base_url, cookies={"lanternpath_owner": forged}) as forger:
        start = forger.post("/", data={"story_category": WORLD, "lesson_topic": TOPIC})
        issued = start.cookies.get("lanternpath_owner")
        assert start.status_code == 303 and issued and issued != forged, "the forged cookie was taken as it came"
        assert forger.get(start.headers["location"]).status_code == 200
    with httpx.Client(base_url=server.base_url, cookies={"lanternpath_owner": forged}) as other:
        assert other.get(start.headers["location"]).status_code == 404


def test_when_an_issued_cookie_is_altered_then_it_owns_nothing(client, server, adventure):
    issued = client.cookies["lanternpath_owner"]
    token, signature = issued.rsplit(".", 1)
    for altered in (f"{token}x.{signature}", f"{token}.{signature[::-1]}", token):
        with httpx.Client(base_url=server.base_url, cookies={"lanternpath_owner": altered}) as stranger:
            assert stranger.get(adventure.url).status_code == 404, altered
    assert client.get(adventure.url).status_code == 200


def test_when_no_secret_key_is_set_then_every_server_on_the_database_accepts_the_issued_cookie(
    scripted_model, database_url
):
    settings = scripted_settings(scripted_model, database_url)
    with LiveServer(create_app(settings)) as first, httpx.Client(base_url=first.base_url, timeout=30) as player_a:
        url = player.start(player_a, WORLD, TOPIC)
        cookies = dict(player_a.cookies)
    with LiveServer(create_app(settings)) as second, httpx.Client(base_url=second.base_url, cookies=cookies) as again:
        assert again.get(url).status_code == 200, "a restart lost the player's adventure"


def test_when_the_secret_key_changes_then_cookies_signed_with_the_old_one_own_nothing(scripted_model, database_url):
    with LiveServer(create_app(scripted_settings(scripted_model, database_url, secret_key="old key"))) as first:
        with httpx.Client(base_url=first.base_url, timeout=30) as player_a:
            url = player.start(player_a, WORLD, TOPIC)
            cookies = dict(player_a.cookies)
    with LiveServer(create_app(scripted_settings(scripted_model, database_url, secret_key="new key"))) as second:
        with httpx.Client(base_url=second.base_url, cookies=cookies) as again:
            assert again.get(url).status_code == 404


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
     404, "does not exist"),
    ("a choice for a chapter number past any integer", lambda c, a: c.post(
        a.action.replace("/chapters/1/", f"/chapters/{10**30}/"), data={"choice": a.choices[0]}), 404,
     "does not exist"),
    ("a stream of a chapter number past any integer", lambda c, a: c.get(
        a.url.replace("/chapters/1", f"/chapters/{10**30}") + "/stream"), 404, "does not exist"),
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


@pytest.mark.parametrize("number", [0, 11, 99])
@pytest.mark.parametrize("suffix", ["", "/stream"])
def test_when_a_chapter_number_can_never_exist_then_404_says_that_chapter_does_not_exist(client, adventure, number,
                                                                                        suffix):
    response = client.get(adventure.url.replace("/chapters/1", f"/chapters/{number}") + suffix)

    text = BeautifulSoup(response.text, "html.parser").get_text(" ")
    assert response.status_code == 404
    assert f"no chapter {number}" in text and "does not exist" in text and "1 to 10" in text, text
    assert "not been reached" not in text


def test_when_a_chapter_of_the_plan_is_not_reached_yet_then_404_keeps_saying_so(client, adventure):
    response = client.get(adventure.url.replace("/chapters/1", "/chapters/7"))

    assert response.status_code == 404
    text = BeautifulSoup(response.text, "html.parser").get_text()
    assert "Chapter 7 of this adventure has not been reached yet" in text


def test_when_a_chapter_already_answered_gets_another_choice_then_it_answers_409(client, adventure):
    assert client.post(adventure.action, data={"choice": adventure.choices[0]}).status_code == 303
    again = client.post(adventure.action, data={"choice": adventure.choices[1]})
    assert again.status_code == 409
    assert "already chose" in BeautifulSoup(again.text, "html.parser").get_text()
