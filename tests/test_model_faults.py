"""A model that fails, drops its connection or goes silent: the player gets a chapter-error
with a retry within seconds, never a hang, and a half-written chapter is never stored."""
from __future__ import annotations

import time

import pytest
from bs4 import BeautifulSoup

from service.config import Settings
from tests.conftest import scripted_settings
from tests.support import player
from tests.support.database import rows

WORLD, TOPIC = "capwood-hollow", "fractions-and-arithmetic"


@pytest.fixture
def settings(scripted_model, database_url) -> Settings:
    return scripted_settings(scripted_model, database_url, first_token_timeout=1.0, idle_timeout=1.0,
                             llm_fallback_models="openai/scripted-fallback")


def _second_chapter(client, model, **fault):
    """Chapter 1 is written normally; the fault applies from chapter 2 on."""
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    model.script.update(**fault)
    return page, player.choose_htmx(client, page.action, page.choices[0])


def _retry_and_read(client, error_html: str) -> player.SseResult:
    form = BeautifulSoup(error_html, "html.parser").select_one('form[action$="/retry"]')
    assert form is not None, "the chapter-error offers no retry"
    response = client.post(form["action"], headers={"HX-Request": "true"})
    assert response.status_code == 200
    return player.read_sse(client, player.sse_url(response.text))


@pytest.mark.parametrize("fault", [
    {"drop_after": 5, "fault_scope": "stream", "fail_times": 1},
    {"stall_after": 5, "fault_scope": "stream", "fail_times": 1},
], ids=["dropped connection", "silence mid-chapter"])
def test_when_the_model_breaks_mid_chapter_then_chapter_error_arrives_and_the_retry_writes_it(
    client, scripted_model, database_url, fault
):
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    scripted_model.script.update(**fault)
    started = time.monotonic()
    stream_url = player.choose_htmx(client, page.action, page.choices[0])
    result = player.read_sse(client, stream_url)

    assert result.names[-2:] == ["chapter-error", "close"], result.names
    assert result.events[-1].at - started < 10, "the error took too long to reach the player"
    assert "replace-content" not in result.names
    assert rows(database_url, "SELECT state, text FROM chapters WHERE number = 2") == [("failed", "")]

    retried = _retry_and_read(client, result.data("chapter-error"))
    assert retried.names[-3:] == ["replace-content", "choices", "close"]
    assert rows(database_url, "SELECT state FROM chapters WHERE number = 2") == [("complete",)]


def test_when_the_model_answers_errors_before_the_first_token_then_it_is_retried(client, scripted_model):
    page, stream_url = _second_chapter(client, scripted_model, fail_status=503, fail_times=1, fault_scope="stream")
    result = player.read_sse(client, stream_url)
    assert result.names[-3:] == ["replace-content", "choices", "close"]


def test_when_the_model_stalls_before_the_first_token_then_the_fallback_model_writes(client, scripted_model):
    page, stream_url = _second_chapter(client, scripted_model, stall_before_first=True, fail_times=2,
                                       fault_scope="stream")
    result = player.read_sse(client, stream_url)

    assert result.names[-3:] == ["replace-content", "choices", "close"]
    streamed = [r["model"] for r in scripted_model.requests if r["stream"]]
    assert streamed[-3:] == ["scripted", "scripted", "scripted-fallback"]


def test_when_every_model_fails_then_the_player_gets_a_clear_message(client, scripted_model):
    page, stream_url = _second_chapter(client, scripted_model, fail_status=500, fault_scope="stream")
    result = player.read_sse(client, stream_url)

    assert result.names == ["chapter-error", "close"]
    message = BeautifulSoup(result.data("chapter-error"), "html.parser").get_text(" ", strip=True)
    assert "try again" in message.lower()
