"""State survives the server process: stop it between chapters, start it again, and the
adventure continues where it was."""
from __future__ import annotations

import httpx
import pytest

from tests.support import player
from tests.support.server_process import ServerProcess


@pytest.fixture
def process_env(scripted_model, tmp_path) -> dict[str, str]:
    return {
        "LLM_MODEL": "openai/scripted", "LLM_API_BASE": scripted_model.url, "LLM_API_KEY": "test-key",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}",
    }


def test_when_the_server_restarts_between_chapters_then_the_adventure_continues(process_env, tmp_path):
    first = ServerProcess(process_env, tmp_path / "server.log").start()
    with httpx.Client(base_url=first.base_url, timeout=30) as client:
        chapter_one = player.read_chapter(client, player.start(client, "skyshelf-library", "human-body"))
        moved = client.post(chapter_one.action, data={"choice": chapter_one.choices[1]})
        chapter_two = player.read_chapter(client, moved.headers["location"])
        cookies = dict(client.cookies)
    assert first.stop() == 0, "the server did not shut down cleanly"

    second = ServerProcess(process_env, tmp_path / "server.log")
    second.port = first.port
    second.start()
    try:
        with httpx.Client(base_url=second.base_url, timeout=30, cookies=cookies) as client:
            adventure_url = chapter_two.url.rsplit("/chapters/", 1)[0]
            resumed = client.get(adventure_url, follow_redirects=True)
            page = player.ChapterPage.parse(str(resumed.url.path), resumed.text)
            assert page.url == chapter_two.url
            assert page.text.split() == chapter_two.text.split(), "the chapter's text changed over the restart"
            assert page.choices == chapter_two.choices

            moved = client.post(page.action, data={"choice": page.choices[0]})
            assert moved.status_code == 303
            chapter_three = player.read_chapter(client, moved.headers["location"])
            assert chapter_three.url.endswith("/chapters/3") and len(chapter_three.choices) == 3
    finally:
        second.stop()
