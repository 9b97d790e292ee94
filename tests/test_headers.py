"""Every answer carries the security headers, set in one place: a Content-Security-Policy
with frame-ancestors, nosniff and a Referrer-Policy; whatever shows a player's adventure is
never stored by a cache; the static files (and the favicon) may be."""
from __future__ import annotations

import httpx
import pytest
import sqlalchemy.exc

from tests.support import player

WORLD, TOPIC = "clockwork-harbor", "plants"


@pytest.fixture
def answers(client, server) -> dict[str, httpx.Response]:
    location = player.start(client, WORLD, TOPIC)
    page = player.read_chapter(client, location)
    base = location.rsplit("/chapters/", 1)[0]
    fragment = client.post(page.action, data={"choice": page.choices[0]}, headers={"HX-Request": "true"})
    stream = player.sse_url(fragment.text)
    with client.stream("GET", stream) as streamed:
        stream_headers = streamed.headers
        streamed.read()
    with httpx.Client(base_url=server.base_url) as stranger:
        not_yours = stranger.get(location)
    return {
        "start page": client.get("/"),
        "start POST": client.post("/", data={"story_category": WORLD, "lesson_topic": TOPIC}),
        "chapter page": client.get(location),
        "htmx fragment": fragment,
        "chapter stream": httpx.Response(200, headers=stream_headers),
        "summary page": client.get(base + "/summary"),
        "summary stream": client.get(base + "/summary/stream"),
        "another browser's adventure (404)": not_yours,
        "a page that does not exist (404)": client.get("/no/such/page"),
        "a cross-site POST (403)": client.post("/", data={}, headers={"Origin": "http://evil.example"}),
        "a bad form (400)": client.post("/", data={"story_category": "atlantis"}),
    }


def test_when_any_page_answers_then_it_carries_the_security_headers_and_is_never_cached(answers):
    for name, response in answers.items():
        policy = response.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, f"{name}: {policy!r}"
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, name
        assert response.headers.get("x-content-type-options") == "nosniff", name
        assert response.headers.get("referrer-policy") == "same-origin", name
        assert "no-store" in response.headers.get("cache-control", ""), f"{name} may be cached"


@pytest.mark.parametrize("path, kind", [("/favicon.ico", "image/"), ("/static/favicon.svg", "image/svg+xml"),
                                        ("/static/lanternpath.css", "text/css")])
def test_when_a_shared_file_is_asked_for_then_it_answers_and_may_be_cached(client, path, kind):
    response = client.get(path)

    assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
    assert "no-store" not in response.headers.get("cache-control", "")
    assert response.headers.get("x-content-type-options") == "nosniff"


def test_when_a_page_loads_then_it_links_its_icon_and_sets_htmx_up_for_the_policy(client):
    html = client.get("/").text

    assert '<link rel="icon" href="/favicon.ico"' in html
    assert '"includeIndicatorStyles": false' in html and '"allowEval": false' in html
    assert "<style" not in html and " style=" not in html and "<script>" not in html


def test_when_something_unexpected_fails_then_the_500_page_carries_the_headers_and_the_game_goes_on(
    client, server, monkeypatch
):
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))

    async def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(server.app.state.services.store, "story_so_far", broken)
    failed = client.post(page.action, data={"choice": page.choices[0]})
    monkeypatch.undo()

    assert failed.status_code == 500 and "Your adventure is safe" in failed.text
    assert "frame-ancestors 'none'" in failed.headers["content-security-policy"]
    assert failed.headers["cache-control"] == "no-store" and failed.headers["x-content-type-options"] == "nosniff"
    assert client.post(page.action, data={"choice": page.choices[0]}).status_code == 303


def test_when_no_database_connection_comes_free_then_the_player_is_asked_to_wait_with_503_and_the_game_goes_on(
    client, server, monkeypatch
):
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))

    async def pool_exhausted(*args, **kwargs):
        raise sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached, connection timed out")

    monkeypatch.setattr(server.app.state.services.store, "story_so_far", pool_exhausted)
    busy = client.post(page.action, data={"choice": page.choices[0]})
    monkeypatch.undo()

    assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
    assert "Your adventure is safe" in busy.text and "QueuePool" not in busy.text
    assert "frame-ancestors 'none'" in busy.headers["content-security-policy"]
    assert client.post(page.action, data={"choice": page.choices[0]}).status_code == 303

