"""`python -m service evaluate`: plays whole adventures against the configured model over
HTTP (no browser) and reports how good the chapters were and how much repair they needed
(service/quality.py). The player reads each chapter before choosing: until its summary and
characters are written, as a child reading it would give them time to be, or READING_SECONDS.
"""
from __future__ import annotations

import asyncio
import random
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import uvicorn

from service.config import Settings
from service.domain.lifecycle import JobState
from service.quality import Played, Report

# The longest a player reads a chapter: about what a child takes for 150 words.
READING_SECONDS = 45.0


class _ChapterPage(HTMLParser):
    """The choice buttons and form of a chapter page, read as a client would."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.choices: list[str] = []
        self.summary: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("action") or "").endswith("/choice"):
            self.action = attrs["action"]
        elif tag == "button" and attrs.get("name") == "choice":
            self.choices.append(attrs.get("value") or "")
        elif tag == "a" and (attrs.get("href") or "").endswith("/summary"):
            self.summary = attrs["href"]


async def _play(client: httpx.AsyncClient, services, world: str, topic: str, rng: random.Random) -> str:
    started = await client.post("/", data={"story_category": world, "lesson_topic": topic})
    url = started.headers["location"]
    adventure_id = url.split("/")[2]
    while True:
        page = _ChapterPage()
        page.feed((await client.get(url)).text)
        await _read(services, adventure_id)
        if not page.choices or page.action is None:
            return adventure_id
        moved = await client.post(page.action, data={"choice": rng.choice(page.choices)})
        url = moved.headers["location"]


async def _read(services, adventure_id: str) -> None:
    """Until the adventure's deferred jobs are done, or a reader would have read on."""
    deadline = time.monotonic() + READING_SECONDS
    while time.monotonic() < deadline:
        jobs = await services.jobs.for_adventure(adventure_id)
        if all(job.state in (JobState.DONE, JobState.FAILED) for job in jobs):
            return
        await asyncio.sleep(0.5)


async def evaluate(settings: Settings, adventures: int, seed: int = 7) -> Report:
    from service.runtime import create_app

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    rng = random.Random(seed)
    services = app.state.services
    report = Report()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            for _ in range(adventures):
                world = rng.choice(list(services.catalog.worlds))
                topic = rng.choice(list(services.catalog.topics))
                adventure_id = await _play(client, services, world, topic, rng)
                report.chapters.extend(await _chapters(services, adventure_id))
    finally:
        server.should_exit = True
        await serving
    return report


async def _chapters(services, adventure_id: str) -> list[Played]:
    from service.chapters.briefs import question_for

    adventure = await services.store.adventure(adventure_id)
    summaries = await services.store.summaries(adventure_id)
    played = []
    for chapter in await services.store.chapters(adventure_id):
        question = question_for(services.catalog, adventure, chapter.number)
        summary = summaries.get(chapter.number)
        played.append(Played(chapter, question.question if question else None, summary.title if summary else None))
    return played


def run(adventures: int) -> str:
    """Evaluate on a throw-away database, so the operator's own adventures are untouched."""
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "evaluate.db"
        settings = Settings(database_url=f"sqlite+aiosqlite:///{database}")
        report = asyncio.run(evaluate(settings, adventures))
    return f"Model: {settings.llm_model}, {adventures} adventure(s)\n\n{report.markdown()}"


