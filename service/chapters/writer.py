"""Runs chapter generations: exactly one per chapter, in the background, so a dropped
connection never stops a chapter and any number of readers can follow the same one.
A generation publishes typed events (text pieces, then the finished chapter or a failure);
the finished chapter is stored (with its deferred jobs) before its end is published.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from service.chapters.briefs import build_brief
from service.chapters.capacity import ChapterCapacity
from service.chapters.events import EventLog
from service.chapters.handoff import HandOff
from service.chapters.pipeline import Chunk, FinishedChapter, StoryWritten, write_chapter
from service.chapters.screening import ChildSafety
from service.config import Settings
from service.domain.chapter_events import EventIds, Failed, Finished
from service.domain.story import Catalog
from service.llm.client import ModelClient, ModelStreamBroken, ModelUnavailable, StreamStats
from service.store.adventures import AdventureStore, StorySoFar

log = logging.getLogger(__name__)

DEFERRED_JOBS = ["summary", "characters"]
STOPPED = "The storyteller had to stop. Please try again."
BROKEN = "Something went wrong while writing this chapter."

ChapterKey = tuple[str, int]


class StreamWatcher(Protocol):
    """Told when a chapter starts and stops being written (the job runner gives way to
    streams; the pages' picture streams learn that a chapter's picture is coming)."""

    def stream_started(self, chapter: ChapterKey) -> None: ...
    def stream_ended(self, chapter: ChapterKey) -> None: ...


class Generation:
    """One attempt at writing a chapter: its hand-off from the move, its event log and, once
    finished, its outcome."""

    def __init__(self, adventure_id: str, number: int, ids: EventIds, story: StorySoFar | None = None,
                 handoff: HandOff | None = None, begun: bool = False):
        self.adventure_id = adventure_id
        self.number = number
        self.story = story
        # The attempt is already stored as begun (a retry that claimed it): only its story is read.
        self.begun = begun
        self.log = EventLog(ids)
        self.handoff = handoff or HandOff.done()
        self.stats = StreamStats(asked=self.handoff.asked)
        self.finished: FinishedChapter | None = None
        self.story_told: asyncio.Task | None = None  # telling the story's readers it is written
        self.error: str | None = None
        self.ended_at: float | None = None
        self.task: asyncio.Task | None = None
        self.sharing: asyncio.Task | None = None

    @property
    def writing(self) -> bool:
        return self.ended_at is None


class LogPublisher(Protocol):
    """Shares a generation's events with the other server processes (shared/events.py)."""

    def publish(self, adventure_id: str, number: int, events: EventLog) -> None: ...


class ChapterWriter:
    def __init__(self, settings: Settings, store: AdventureStore, catalog: Catalog, model: ModelClient,
                 safety: ChildSafety, capacity: ChapterCapacity | None = None,
                 publisher: LogPublisher | None = None):
        self.settings = settings
        self.publisher = publisher
        self.store = store
        self.catalog = catalog
        self.model = model
        self.safety = safety
        self.capacity = capacity or ChapterCapacity(0)
        self.generations: dict[ChapterKey, Generation] = {}
        # The chapters being written now, and the generations that have ended, oldest first:
        # kept apart so that neither a start nor an end walks every generation kept.
        self._writing: set[ChapterKey] = set()
        self._ended_order: deque[Generation] = deque()
        self._watchers: list[StreamWatcher] = []
        # Called with a chapter and its story's text as soon as the story is written.
        self._story_readers: list[Callable[[ChapterKey, str], None]] = []
        self.idle = asyncio.Event()
        self.idle.set()

    def watch(self, watcher: StreamWatcher) -> None:
        self._watchers.append(watcher)

    def on_story_written(self, reader: Callable[[ChapterKey, str], None]) -> None:
        self._story_readers.append(reader)

    def streaming_chapters(self) -> set[ChapterKey]:
        """(adventure, chapter) of every chapter being written now."""
        return set(self._writing)

    def writing(self, adventure_id: str, number: int) -> bool:
        """Whether this process is writing the chapter now."""
        return (adventure_id, number) in self._writing

    def running(self, adventure_id: str, number: int) -> Generation | None:
        return self.generations.get((adventure_id, number))

    def start(self, adventure_id: str, number: int, ids: EventIds, story: StorySoFar | None = None,
              handoff: HandOff | None = None, begun: bool = False) -> Generation:
        """Start writing the chapter unless a generation of it is running or just finished.

        A move hands over the story so far, which it had to load anyway: the model is then
        called at once. Without it, the generation reads the story and marks the chapter as
        being written itself. A move still storing the chapter's row passes its `handoff`.
        """
        key = (adventure_id, number)
        current = self.generations.get(key)
        if current is not None and current.error is None:
            return current
        self._forget_old()
        generation = Generation(adventure_id, number, ids, story, handoff, begun)
        self.generations[key] = generation
        self._writing.add(key)
        self.idle.clear()
        generation.task = asyncio.create_task(self._run(generation), name=f"chapter {adventure_id}/{number}")
        if self.publisher is not None:
            generation.sharing = asyncio.create_task(self._publish(generation), name=f"sharing {adventure_id}/{number}")
        for watcher in self._watchers:
            watcher.stream_started(key)
        return generation

    def call_off(self, generation: Generation) -> None:
        """Its move could not store the chapter: the generation stops and stores nothing, and no
        one follows it (no page or stream leads to a chapter that is not in the store)."""
        generation.handoff.call_off()
        generation.task.cancel()
        key = (generation.adventure_id, generation.number)
        if self.generations.get(key) is generation:
            del self.generations[key]
            self._writing.discard(key)
        self._mark_idle_if_quiet()  # a task cancelled before its first step never reaches _ended

    async def _publish(self, generation: Generation) -> None:
        """Other processes may follow the chapter once its row is stored (before, nothing
        leads them to it); one that is called off is never shared."""
        if await generation.handoff.row_stored():
            self.publisher.publish(generation.adventure_id, generation.number, generation.log)

    async def _run(self, generation: Generation) -> None:
        try:
            async with self.capacity.turn(generation):  # past the cap, the chapter waits here
                await self._write(generation)
        except (ModelUnavailable, ModelStreamBroken) as exc:
            await self._fail(generation, _player_message(exc), repr(exc))
        except asyncio.CancelledError:
            await asyncio.shield(self._fail(generation, STOPPED, "cancelled"))
            raise
        except Exception as exc:  # whatever breaks, the player gets a message and a retry, never a hang
            log.exception("chapter %s/%s failed", generation.adventure_id, generation.number)
            await self._fail(generation, BROKEN, repr(exc))
        finally:
            generation.handoff.asked.set()  # the move never waits for a model that is not asked
            self._ended(generation)

    async def _write(self, generation: Generation) -> None:
        """The one place a chapter's model is called: tokens in, typed events out."""
        number = generation.number
        story = generation.story or await self._found_story(generation)
        brief = build_brief(self.catalog, story, number, self.settings.context_chars)
        rng = random.Random(f"{story.adventure.seed}:{number}")
        async for item in write_chapter(brief, self.model, self.safety, rng, self.settings.helper_timeout,
                                       self.settings.chapter_max_chars, self.settings.loop_preview_words,
                                       generation.stats, self.settings.screen_stream):
            if isinstance(item, Chunk):
                generation.log.text(item.text)
            elif isinstance(item, StoryWritten):
                if self._story_readers:
                    generation.story_told = asyncio.create_task(self._tell_story(generation, item.text))
            else:
                await self._finish(generation, item)

    async def _tell_story(self, generation: Generation, text: str) -> None:
        """The story's readers learn it once the chapter's row is stored (a move stores it
        while the model writes): never holding up the stream."""
        if await generation.handoff.row_stored():
            for reader in self._story_readers:
                reader((generation.adventure_id, generation.number), text)

    async def _found_story(self, generation: Generation) -> StorySoFar:
        """A chapter found waiting (a retry, or one whose move was cut off) is marked as being
        written, with this attempt's ids, while its story is read."""
        aid, number = generation.adventure_id, generation.number
        if generation.begun:
            return await self.store.story_so_far(aid, number)
        story, _ = await asyncio.gather(self.store.story_so_far(aid, number),
                                        self.store.begin_attempt(aid, number, generation.log.ids.last))
        return story

    async def _finish(self, generation: Generation, chapter: FinishedChapter) -> None:
        aid, number = generation.adventure_id, generation.number
        values = {
            "text": chapter.text, "choices": chapter.choices, "quality": chapter.quality,
            "first_token_seconds": chapter.first_token_seconds,
        }
        for hit in chapter.screened:
            log.info("chapter %s/%s: a sentence was dropped (%s: %s)", aid, number, hit.category, hit.term)
        if not await generation.handoff.row_stored():
            return
        await self.store.complete_chapter(aid, number, values, DEFERRED_JOBS)
        generation.finished = chapter
        generation.log.close(Finished(tuple(chapter.paragraphs), tuple(chapter.choices), chapter.legend))

    async def _fail(self, generation: Generation, message: str, detail: str) -> None:
        log.warning("chapter %s/%s not written: %s", generation.adventure_id, generation.number, detail)
        generation.error = message
        try:
            if await generation.handoff.row_stored():
                await self.store.fail_chapter(generation.adventure_id, generation.number, message)
        finally:
            generation.log.close(Failed(message))

    def _ended(self, generation: Generation) -> None:
        generation.ended_at = time.monotonic()
        generation.log.close(Failed(BROKEN))  # only if nothing ended it: every stream ends
        key = (generation.adventure_id, generation.number)
        if self.generations.get(key) is generation:
            self._writing.discard(key)
            self._ended_order.append(generation)
        self._mark_idle_if_quiet()
        for watcher in self._watchers:
            watcher.stream_ended((generation.adventure_id, generation.number))

    def _mark_idle_if_quiet(self) -> None:
        if not self._writing:
            self.idle.set()

    def _forget_old(self) -> None:
        """Finished generations are kept a while so that reconnects replay them exactly."""
        horizon = time.monotonic() - self.settings.generation_keep_seconds
        while self._ended_order and self._ended_order[0].ended_at < horizon:
            old = self._ended_order.popleft()
            key = (old.adventure_id, old.number)
            if self.generations.get(key) is old:
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
