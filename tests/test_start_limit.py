"""Starting adventures is limited per client address: past the limit the start form's POST
answers 429 with Retry-After and a page that says so, and nothing is started, not even a
model call. A classroom behind one address never meets the default limit; a flood does."""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from bs4 import BeautifulSoup

from service.config import Settings
from tests.conftest import scripted_settings
from tests.support.database import rows, wait_until

FORM = {"story_category": "skyshelf-library", "lesson_topic": "plants"}


@pytest.fixture
def settings(request, scripted_model, database_url) -> Settings:
    return scripted_settings(scripted_model, database_url, **getattr(request, "param", {}))


def _chapter_requests(model) -> int:
    return sum(1 for r in list(model.requests) if r["stream"])


@pytest.mark.parametrize("settings", [{"start_limit_burst": 3, "start_limit_seconds": 30}], indirect=True)
def test_when_one_address_starts_past_its_limit_then_429_with_retry_after_and_nothing_is_started(
    client, scripted_model, database_url
):
    assert [client.post("/", data=FORM).status_code for _ in range(3)] == [303] * 3
    wait_until(lambda: _chapter_requests(scripted_model) == 3, 10, "the three chapters did not reach the model")
    asked = _chapter_requests(scripted_model)

    refused = client.post("/", data=FORM)

    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    text = BeautifulSoup(refused.text, "html.parser").get_text(" ")
    assert "wait 30 seconds" in text and "start yours" in text
    assert "no-store" in refused.headers["cache-control"] and refused.headers["content-security-policy"]
    time.sleep(0.3)  # a model call the refused POST had started would have reached the model by now
    assert _chapter_requests(scripted_model) == asked
    assert rows(database_url, "SELECT count(*) FROM adventures")[0][0] == 3


async def test_when_a_classroom_of_thirty_starts_at_once_behind_one_address_then_the_default_limit_lets_all_in(
    server, settings
):
    assert settings.start_limit_burst >= 30
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as classroom:
        answers = await asyncio.gather(*(classroom.post("/", data=FORM) for _ in range(30)))
    assert [a.status_code for a in answers] == [303] * 30


async def test_when_hundreds_of_rapid_posts_come_from_one_address_then_the_default_limit_answers_429(
    server, settings
):
    # Empty forms: each would be a 400 if admitted; the limit is counted before the form is read.
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as flood:
        answers = [a.status_code for a in await asyncio.gather(*(flood.post("/", data={}) for _ in range(300)))]
    refilled = (time.monotonic() - began) / settings.start_limit_seconds
    assert settings.start_limit_burst <= answers.count(400) <= settings.start_limit_burst + refilled + 1
    assert set(answers) == {400, 429}


@pytest.mark.parametrize("settings", [{"start_limit_burst": 1, "start_limit_seconds": 0.5}], indirect=True)
def test_when_an_address_waits_out_retry_after_then_it_may_start_again(client):
    assert [client.post("/", data={}).status_code for _ in range(2)] == [400, 429]
    time.sleep(0.6)
    assert client.post("/", data={}).status_code == 400


@pytest.mark.parametrize("settings", [{"start_limit_burst": 2, "forwarded_allow_ips": "127.0.0.1"}], indirect=True)
def test_when_behind_a_trusted_proxy_then_each_forwarded_address_has_its_own_limit(client):
    def start(address: str) -> int:
        return client.post("/", data={}, headers={"X-Forwarded-For": f"{address}, 127.0.0.1"}).status_code

    # The proxy appends the address it saw; the nearest untrusted one is the client.
    assert [start("203.0.113.7") for _ in range(3)] == [400, 400, 429]
    assert [start("198.51.100.20") for _ in range(2)] == [400, 400]


@pytest.mark.parametrize("settings", [{"start_limit_burst": 2}], indirect=True)
def test_when_no_proxy_is_trusted_then_a_forwarded_address_does_not_escape_the_limit(client):
    answers = [client.post("/", data={}, headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
               for n in range(3)]
    assert answers == [400, 400, 429]
