"""Runs chapter generations: exactly one per chapter, in the background, so a dropped
connection never stops a chapter and any number of readers can follow the same one.
The finished chapter is stored (with its deferred jobs) before its final events go out.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from service.chapters.briefs import build_brief
from service.chapters.capacity import ChapterCapacity
from service.chapters.events import EventLog
from service.chapters.pipeline import Chunk, FinishedChapter, write_chapter
from service.chapters.screening import ChildSafety
from service.config import Settings
from service.domain.fidelity import Legend
from service.domain.story import Catalog
from service.llm.client import ModelClient, ModelStreamBroken, ModelUnavailable, StreamStats
from service.store.adventures import AdventureStore, StorySoFar

log = logging.getLogger(__name__)

DEFERRED_JOBS = ["summary", "characters"]


class ChapterRenderer(Protocol):
    def chunk(self, text: str) -> str: ...
    async def chapter(self, paragraphs: list[str]) -> str: ...
    async def choices(self, adventure_id: str, number: int, choices: list[str], legend: Legend | None) -> str: ...
    async def error(self, adventure_id: str, number: int, message: str) -> str: ...


class Generation:
    """One chapter being written: its event log and, once finished, its outcome."""

    def __init__(self, adventure_id: str, number: int, story: StorySoFar | None = None):
        self.adventure_id = adventure_id
        self.number = number
        self.story = story
        self.log = EventLog()
        self.finished: FinishedChapter | None = None
        self.error: str | None = None
        self.ended_at: float | None = None
        self.task: asyncio.Task | None = None
        # Set once the chapter's row is in the store: the generation writes nothing there before.
        self.stored = asyncio.Event()
        self.called_off = False
        self.stats = StreamStats()  # `stats.asked`: the model has the request (or no longer will)


class ChapterWriter:
    def __init__(self, settings: Settings, store: AdventureStore, catalog: Catalog, model: ModelClient,
                 safety: ChildSafety, renderer: ChapterRenderer, capacity: ChapterCapacity | None = None):
        self.settings = settings
        self.capacity = capacity or ChapterCapacity(0)
        self.store = store
        self.catalog = catalog
        self.model = model
        self.safety = safety
        self.renderer = renderer
        self.generations: dict[tuple[str, int], Generation] = {}
        self.on_started: list[Callable[[Generation], None]] = []
        self.on_closed: list[Callable[[Generation], None]] = []
        self.idle = asyncio.Event()
        self.idle.set()

    def streaming_chapters(self) -> set[tuple[str, int]]:
        """(adventure, chapter) of every chapter being written now."""
        return {key for key, g in self.generations.items() if g.ended_at is None}

    def running(self, adventure_id: str, number: int) -> Generation | None:
        return self.generations.get((adventure_id, number))

    def start(self, adventure_id: str, number: int, story: StorySoFar | None = None,
              stored: bool = True) -> Generation:
        """Start writing the chapter unless a generation of it is running or just finished.

        A move hands over the story so far, which it had to load anyway: the model is then
        called at once. Without it, the generation reads the story and marks the chapter as
        being written itself. `stored=False`: the move is still storing the chapter's row, and
        then sets `generation.stored` (or calls `call_off` if it could not).
        """
        key = (adventure_id, number)
        current = self.generations.get(key)
        if current is not None and current.error is None:
            return current
        self._forget_old()
        generation = Generation(adventure_id, number, story)
        if stored:
            generation.stored.set()
        self.generations[key] = generation
        self.idle.clear()
        generation.task = asyncio.create_task(self._run(generation), name=f"chapter {adventure_id}/{number}")
        for callback in self.on_started:
            callback(generation)
        return generation

    def call_off(self, generation: Generation) -> None:
        """Its move could not store the chapter: the generation stops and stores nothing, and no
        one follows it (no page or stream leads to a chapter that is not in the store)."""
        generation.called_off = True
        generation.stored.set()
        generation.task.cancel()
        key = (generation.adventure_id, generation.number)
        if self.generations.get(key) is generation:
            del self.generations[key]
        self._mark_idle_if_quiet()  # a task cancelled before its first step never reaches _ended

    async def _run(self, generation: Generation) -> None:
        try:
            async with self.capacity.turn(generation):  # past the cap, the chapter waits here
                await self._write(generation)
        except (ModelUnavailable, ModelStreamBroken) as exc:
            await self._fail(generation, _player_message(exc), repr(exc))
        except asyncio.CancelledError:
            await asyncio.shield(self._fail(generation, "The storyteller had to stop. Please try again.", "cancelled"))
            raise
        except Exception as exc:  # whatever breaks, the player gets a message and a retry, never a hang
            log.exception("chapter %s/%s failed", generation.adventure_id, generation.number)
            await self._fail(generation, "Something went wrong while writing this chapter.", repr(exc))
        finally:
            generation.stats.asked.set()
            self._ended(generation)

    async def _write(self, generation: Generation) -> None:
        number = generation.number
        story = generation.story or await self._found_story(generation)
        brief = build_brief(self.catalog, story, number, self.settings.context_chars)
        rng = random.Random(f"{story.adventure.seed}:{number}")
        async for item in write_chapter(brief, self.model, self.safety, rng, self.settings.helper_timeout,
                                       self.settings.chapter_max_chars, self.settings.loop_preview_words,
                                       generation.stats, self.settings.screen_stream):
            if isinstance(item, Chunk):
                generation.log.publish("chunk", self.renderer.chunk(item.text))
            else:
                await self._finish(generation, item)

    async def _found_story(self, generation: Generation) -> StorySoFar:
        """A chapter found waiting (a retry, or one whose move was cut off) is marked as being
        written while its story is read."""
        aid, number = generation.adventure_id, generation.number
        story, _ = await asyncio.gather(self.store.story_so_far(aid, number),
                                        self.store.set_chapter_state(aid, number, "writing"))
        return story

    async def _finish(self, generation: Generation, chapter: FinishedChapter) -> None:
        aid, number = generation.adventure_id, generation.number
        values = {
            "text": chapter.text, "choices": chapter.choices, "quality": chapter.quality,
            "chunk_count": generation.log.chunk_count, "first_token_seconds": chapter.first_token_seconds,
        }
        for hit in chapter.screened:
            log.info("chapter %s/%s: a sentence was dropped (%s: %s)", aid, number, hit.category, hit.term)
        await generation.stored.wait()
        await self.store.complete_chapter(aid, number, values, DEFERRED_JOBS)
        generation.finished = chapter
        generation.log.publish("replace-content", await self.renderer.chapter(chapter.paragraphs))
        generation.log.publish("choices", await self.renderer.choices(aid, number, chapter.choices, chapter.legend))
        generation.log.publish("close", "")

    async def _fail(self, generation: Generation, message: str, detail: str) -> None:
        log.warning("chapter %s/%s not written: %s", generation.adventure_id, generation.number, detail)
        generation.error = message
        try:
            await generation.stored.wait()
            if not generation.called_off:
                await self.store.set_chapter_state(generation.adventure_id, generation.number, "failed", message)
        finally:
            html = await self.renderer.error(generation.adventure_id, generation.number, message)
            generation.log.publish("chapter-error", html)
            generation.log.publish("close", "")

    def _ended(self, generation: Generation) -> None:
        generation.ended_at = time.monotonic()
        generation.log.close()
        self._mark_idle_if_quiet()
        for callback in self.on_closed:
            callback(generation)

    def _mark_idle_if_quiet(self) -> None:
        if not self.streaming_chapters():
            self.idle.set()

    def _forget_old(self) -> None:
        """Finished generations are kept a while so that reconnects replay them exactly."""
        horizon = time.monotonic() - self.settings.generation_keep_seconds
        for key, g in list(self.generations.items()):
            if g.ended_at is not None and g.ended_at < horizon:
                del self.generations[key]

    def stop_all(self) -> list[asyncio.Task]:
        """Stop every chapter being written; each ends with chapter-error and is stored as failed."""
        tasks = [g.task for g in self.generations.values() if g.task and not g.task.done()]
        for task in tasks:
            task.cancel()
        return tasks

    async def shutdown(self) -> None:
        await asyncio.gather(*self.stop_all(), return_exceptions=True)


def _player_message(exc: Exception) -> str:
    if isinstance(exc, ModelUnavailable):
        return "The storyteller could not be reached just now. Please try again in a moment."
    return "The storyteller stopped in the middle of this chapter. Please try again."
