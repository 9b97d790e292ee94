"""Picture jobs: a chapter's scene, once its story is written, and the first chapter's
choices, one picture each, as soon as the adventure exists. The picture process draws them
(jobs/drawings.py); the jobs store them and tell the pages' picture streams (PictureNews,
jobs/picture_news.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from service.domain.agency import OFFER_SIZE
from service.domain.lifecycle import ChapterState, JobState
from service.domain.pictures import slot_state
from service.jobs.drawings import Drawn
from service.jobs.picture_news import PictureNews, RecentPictures
from service.jobs.work import JobHandler
from service.store.adventures import OPTIONS_JOB, SCENE_JOB, ResultWrite
from service.store.jobs import JobQueue
from service.store.models import Job
from service.store.pictures import SCENE, ChapterPictures, PictureStore, Shown, picture_saved

log = logging.getLogger(__name__)
_FAILED = object()  # a drawing that failed
# A picture begun early whose job has not come for it by then is let go.
EARLY_KEEP_SECONDS = 600.0
# A job: its kind, its adventure and its chapter.
JobKey = tuple[str, str, int]


class Drawer(Protocol):
    """Who draws (the picture process: jobs/picture_process.py). None: too little was fit to draw."""

    async def scene(self, adventure_id: str, number: int, text: str | None = None) -> Drawn | None: ...
    async def option(self, adventure_id: str, number: int) -> Drawn | None: ...


class PictureJobs:
    """A chapter's picture (its scene) and the first chapter's choices' pictures: drawn by
    the picture process, stored here.

    Each is begun early, outside the job's workers: a new adventure's choices' pictures as
    soon as it exists (`adventure_begun`), a chapter's picture as soon as its story is
    written (`story_written`), while the choices block still streams and the chapter is
    stored. Each is stored as soon as it is drawn, ending its durable job then and there: it
    waits for no worker (at 50 players, scenes waited seconds behind the choices' pictures
    for one), and costs no claim (four of the database's round trips an adventure). The job
    is held meanwhile (AdventureStore.picture_hold), and the job's workers here pass it over
    while its drawing is under way (`drawing`). They take it, with the drawing if there is
    one, when it could not be ended so (a drawing failed: the job is then made due at once)
    or was never begun here (a restart, another process)."""

    def __init__(self, pictures: PictureStore, queue: JobQueue, drawer: Drawer, news: PictureNews,
                 recent: RecentPictures | None = None):
        self.pictures = pictures
        self.queue = queue
        self.drawer = drawer
        self.news = news
        self.recent = recent or RecentPictures()
        self._early: dict[JobKey, tuple[float, asyncio.Task]] = {}
        # The drawings begun early until they are stored or left to the job (see drawn_here).
        self._storing: dict[JobKey, asyncio.Task] = {}
        # Called when a drawing begun early is left to the job's workers (they may be asleep).
        self.on_left_to_workers: list[Callable[[], None]] = []
        # Whether this process is writing the chapter now (the chapters' writer answers).
        self.writing: Callable[[str, int], bool] = lambda _adventure_id, _number: False
        # The chapters whose picture is begun early, until their stream ends: only then is
        # the picture's job stored (with the chapter), for the drawing to end it.
        self._chapter_ends: dict[tuple[str, int], asyncio.Event] = {}

    def handlers(self) -> dict[str, JobHandler]:
        return {SCENE_JOB: self.scene, OPTIONS_JOB: self.options}

    async def stop(self) -> None:
        tasks = [*self._storing.values(), *(task for _, task in self._early.values())]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def drawn_here(self, adventure_id: str, number: int) -> bool:
        """The chapter's picture is being drawn early, or stored, and the news of that end,
        from here, will say what its slots show if it was stored (PictureNews): after the
        first chapter, whose choices' pictures only the store knows (_slots_after_scene)."""
        return number != 1 and (SCENE_JOB, adventure_id, number) in self._storing

    def drawing(self) -> set[JobKey]:
        """The jobs whose pictures are being drawn early: their workers pass them over."""
        return {key for key, (_, task) in self._early.items() if not task.done()}

    def adventure_begun(self, adventure_id: str) -> None:
        self._begin((OPTIONS_JOB, adventure_id, 1), self._draw_options(adventure_id, range(1, OFFER_SIZE + 1)))

    def story_written(self, chapter: tuple[str, int], text: str) -> None:
        if self.writing(*chapter):
            self._chapter_ends[chapter] = asyncio.Event()
        self._begin((SCENE_JOB, *chapter), self.drawer.scene(*chapter, text))

    def stream_started(self, chapter: tuple[str, int]) -> None:
        pass

    def stream_ended(self, chapter: tuple[str, int]) -> None:
        """The chapter is stored with its picture's job (or it failed, and has none)."""
        if (ended := self._chapter_ends.pop(chapter, None)) is not None:
            ended.set()

    async def _job_stored(self, kind: str, adventure_id: str, number: int) -> None:
        """Until the job a drawing begun early ends is stored, or will never be: a chapter's
        with the chapter, at its stream's end; the choices' with the adventure, before."""
        ended = self._chapter_ends.get((adventure_id, number)) if kind == SCENE_JOB else None
        if ended is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EARLY_KEEP_SECONDS):
                    await ended.wait()

    def _begin(self, key: JobKey, drawing: Awaitable) -> None:
        horizon = time.monotonic() - EARLY_KEEP_SECONDS
        for old, (began, task) in list(self._early.items()):
            if began < horizon:  # its job was never stored (or it ran elsewhere)
                task.cancel()
                del self._early[old]
        task = asyncio.ensure_future(drawing)
        task.add_done_callback(_quietly)  # its job reads the result; an error there is logged there
        self._early[key] = (time.monotonic(), task)
        storing = asyncio.create_task(self._store_early(key, task), name=f"picture {key} stored")
        self._storing[key] = storing
        storing.add_done_callback(lambda done: self._stored_or_left(key, done))

    async def _store_early(self, key: JobKey, drawing: asyncio.Future) -> None:
        """The drawing begun early, stored with its job's end once drawn and its job stored;
        else left to the job."""
        kind, adventure_id, number = key
        try:
            drawn = await asyncio.shield(drawing)
        except Exception:  # a failed drawing is the job's first attempt: left to it (its worker logs it)
            drawn = _FAILED
        await self._job_stored(*key)
        if kind == OPTIONS_JOB and drawn is not _FAILED and any(isinstance(each, BaseException)
                                                                for each in drawn.values()):
            drawn = _FAILED  # the job stores those drawn, and tries the rest again
        if drawn is not _FAILED and self._early.get(key, (0, None))[1] is drawing:  # no worker took it meanwhile
            write = (self._options_saved(adventure_id, drawn) if kind == OPTIONS_JOB
                     else None if drawn is None else self._saved(adventure_id, number, SCENE, drawn))
            try:
                if await self.queue.finish_pending(kind, adventure_id, number, write):
                    self._early.pop(key, None)
                    self._stored_or_left(key)
                    self.news.notify(adventure_id, number,
                                     None if kind == OPTIONS_JOB else _slots_after_scene(adventure_id, number, drawn))
                    return
            except Exception:
                log.exception("the pictures of %s could not be stored as drawn; their job stores them", key)
        self._stored_or_left(key)
        self.news.wake(adventure_id, number)  # its streams here look at the store again, and wait for the job's news
        try:
            await self.queue.due_now(*key)  # it was held for this drawing (AdventureStore.picture_hold)
        except Exception:  # it falls due when its hold ends
            log.exception("the job of %s could not be made due; it falls due when its hold ends", key)
        for wake in self.on_left_to_workers:
            wake()

    def _saved(self, adventure_id: str, number: int, option: int, drawn: Drawn) -> ResultWrite:
        """The write that stores the picture; its bytes are served from memory meanwhile (no
        page names its address before it is stored)."""
        drawing = drawn.drawing
        self.recent.keep(adventure_id, number, drawing)
        return picture_saved(adventure_id, number, option, drawing.data, drawing.content_type, drawn.alt,
                             drawn.prompt, drawing.digest)

    def _options_saved(self, adventure_id: str, drawn: dict[int, Drawn | BaseException | None]) -> ResultWrite | None:
        """The choices' pictures drawn, stored together (one write, not four: fifty adventures
        starting at once queued 200 writes); None, too little of a choice was fit to draw."""
        return _together([self._saved(adventure_id, 1, number, each)
                          for number, each in drawn.items() if isinstance(each, Drawn)])

    def _stored_or_left(self, key: JobKey, storing: asyncio.Task | None = None) -> None:
        """The early drawing's storing task (by default, the one running) has ended what it
        could: no news of its job comes from it any more."""
        if self._storing.get(key) is (storing or asyncio.current_task()):
            del self._storing[key]

    async def scene(self, job: Job) -> ResultWrite | None:
        key = (job.adventure_id, job.chapter_number)
        early = self._early.pop((SCENE_JOB, *key), None)
        # The drawing begun early is this job's first attempt: if it failed, so did the
        # attempt, and the job's retries draw afresh.
        drawn = await early[1] if early is not None else await self.drawer.scene(*key)
        return None if drawn is None else self._saved(*key, SCENE, drawn)  # None: too little was fit to draw

    async def options(self, job: Job) -> ResultWrite | None:
        """The choices' pictures: those drawn early if they were (this job's first attempt),
        else all that are not stored yet, drawn at once. When some fail, those drawn are
        stored all the same, and the job's retry draws only the rest."""
        early = self._early.pop((OPTIONS_JOB, job.adventure_id, 1), None)
        if early is not None:
            results = await early[1]
        else:
            stored = await self.pictures.options_drawn(job.adventure_id)
            results = await self._draw_options(job.adventure_id,
                                               [number for number in range(1, OFFER_SIZE + 1) if number not in stored])
        saved = self._options_saved(job.adventure_id, results)
        if errors := [each for each in results.values() if isinstance(each, BaseException)]:
            if saved is not None:
                await self.pictures.save(saved)
                self.news.notify(job.adventure_id, 1)
            raise errors[0]
        return saved

    async def _draw_options(self, adventure_id: str, numbers: Iterable[int]
                            ) -> dict[int, Drawn | BaseException | None]:
        """Each choice's picture, or why it could not be drawn (None: too little was fit)."""
        numbers = list(numbers)
        results = await asyncio.gather(*(self.drawer.option(adventure_id, number) for number in numbers),
                                       return_exceptions=True)
        return dict(zip(numbers, results, strict=True))


def _slots_after_scene(adventure_id: str, number: int, drawn: Drawn | None) -> ChapterPictures | None:
    """What a chapter's slots show once its scene's job ended with `drawn` stored (the chapter
    is then complete: its job is stored with it). Only its one slot after the first chapter;
    the first has its choices' too, which only the store knows."""
    if number == 1:
        return None
    scene = None if drawn is None else Shown(adventure_id, drawn.drawing.digest, drawn.alt)
    # The slot's state by the same rule as when it is read from the store (its job is done).
    return ChapterPictures(number, ChapterState.COMPLETE, scene,
                           slot_state(scene is not None, ChapterState.COMPLETE, JobState.DONE))


def _together(writes: list[ResultWrite]) -> ResultWrite | None:
    if not writes:
        return None

    def write(session) -> None:
        for each in writes:
            each(session)

    return write


def _quietly(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()
