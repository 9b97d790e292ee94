"""`python -m service evaluate`: plays whole adventures against the configured model over
HTTP (no browser) and reports how good the chapters were and how much repair they needed.
"""
from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import httpx
import uvicorn

from service.config import Settings
from service.domain.screen import ANSWER, INSTRUCTIONS, UNFIT
from service.domain.story import ChapterType


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


@dataclass
class Report:
    chapters: list = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        chosen = [c for c in self.chapters if c.quality.get("choices") in ("model", "repaired", "fallback")]
        lessons = [c for c in self.chapters if c.type == ChapterType.LESSON]
        ttft = [c.first_token_seconds for c in self.chapters if c.first_token_seconds is not None]
        rates = [c.quality["tokens"] / c.quality["stream_seconds"] for c in self.chapters
                 if c.quality.get("stream_seconds")]
        return [
            ("chapters written", str(len(self.chapters))),
            ("choices valid unaided", _share(sum(c.quality["choices"] == "model" for c in chosen), len(chosen))),
            ("choices valid after repair call", _share(
                sum(c.quality["choices"] in ("model", "repaired") for c in chosen), len(chosen))),
            ("choices from the fallback", _share(sum(c.quality["choices"] == "fallback" for c in chosen), len(chosen))),
            ("paragraphs per chapter (mean)", _mean([c.quality.get("paragraphs", 0) for c in self.chapters])),
            # Unasked ones show as the legend over their answers (domain/fidelity.py).
            ("lesson questions asked word for word in the story", _share(
                sum(_normal(c.question) in _normal(c.text) for c in lessons), len(lessons))),
            ("repetition or length stops", str(sum(bool(c.quality.get("stopped")) for c in self.chapters))),
            ("time to first token, median (s)", _mean(ttft, statistics.median)),
            ("tokens per second (mean)", _mean(rates)),
        ]

    def screened(self) -> list[tuple[str, str, int, int, int]]:
        """Per adventure: unfit sentences dropped by category, instruction echoes dropped,
        sentences naming a lesson's answer dropped, and markdown marks cleaned."""
        by_adventure: dict[str, Counter] = {}
        for chapter in self.chapters:
            by_adventure.setdefault(chapter.adventure_id, Counter()).update(chapter.quality.get("screened") or {})
        rows = []
        for adventure, counts in by_adventure.items():
            unfit = ", ".join(f"{category} {counts[category]}" for category in UNFIT if counts[category]) or "none"
            rows.append((adventure, unfit, counts[INSTRUCTIONS], counts[ANSWER], counts["markdown"]))
        return rows

    def markdown(self) -> str:
        lines = ["| measure | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in self.rows()]
        lines += ["", "What the child-safety screen took out, per adventure:", "",
                  "| adventure | unfit sentences dropped | instruction echoes dropped | answers named, dropped "
                  "| markdown cleaned |", "|---|---|---:|---:|---:|"]
        lines += [f"| {a} | {unfit} | {echoes} | {answers} | {marks} |"
                  for a, unfit, echoes, answers, marks in self.screened()]
        return "\n".join(lines)


def _share(count: int, total: int) -> str:
    return f"{count}/{total} ({100 * count / total:.0f} %)" if total else "n/a"


def _mean(values: list[float], how=statistics.fmean) -> str:
    return f"{how(values):.2f}" if values else "n/a"


def _normal(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


async def _play(client: httpx.AsyncClient, world: str, topic: str, rng: random.Random) -> str:
    started = await client.post("/", data={"story_category": world, "lesson_topic": topic})
    url = started.headers["location"]
    while True:
        page = _ChapterPage()
        page.feed((await client.get(url)).text)
        if not page.choices or page.action is None:
            return url.split("/")[2]
        moved = await client.post(page.action, data={"choice": rng.choice(page.choices)})
        url = moved.headers["location"]


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
                adventure_id = await _play(client, world, topic, rng)
                report.chapters.extend(await _chapters(services, adventure_id))
    finally:
        server.should_exit = True
        await serving
    return report


async def _chapters(services, adventure_id: str) -> list:
    from service.chapters.briefs import question_for

    adventure = await services.store.adventure(adventure_id)
    chapters = await services.store.chapters(adventure_id)
    for chapter in chapters:
        question = question_for(services.catalog, adventure, chapter.number)
        chapter.question = question.question if question else None
    return chapters


def run(adventures: int) -> str:
    """Evaluate on a throw-away database, so the operator's own adventures are untouched."""
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "evaluate.db"
        settings = Settings(database_url=f"sqlite+aiosqlite:///{database}")
        report = asyncio.run(evaluate(settings, adventures))
    return f"Model: {settings.llm_model}, {adventures} adventure(s)\n\n{report.markdown()}"


