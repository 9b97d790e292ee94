"""Picture jobs: a chapter's scene, once its story is written, and the first chapter's
choices, one picture each, as soon as the adventure exists. The picture process draws them
(jobs/drawings.py); the jobs store them and tell the pages' picture streams (PictureNews,
jobs/picture_news.py).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
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


class Drawer(Protocol):
    """Who draws (the picture process: jobs/picture_process.py). None: too little was fit to draw."""

    async def scene(self, adventure_id: str, number: int, text: str | None = None) -> Drawn | None: ...
    async def option(self, adventure_id: str, number: int) -> Drawn | None: ...


class PictureJobs:
    """A chapter's picture (its scene) and the first chapter's choices' pictures: drawn by
    the picture process, stored here.

    A chapter's picture is begun as soon as its story is written (`story_written`), while the
    choices block still streams and the chapter is stored, and stored as soon as it is drawn,
    ending its durable job then and there: it waits for no worker (at 50 players, scenes
    waited seconds behind the choices' pictures for one). The job's workers leave such a
    chapter alone while its drawing is under way (`drawing`), and take the job, with the
    drawing if there is one, when it could not be ended so (it failed, the job was not
    stored yet) or was never begun here (another process, a restart)."""

    def __init__(self, pictures: PictureStore, queue: JobQueue, drawer: Drawer, news: PictureNews,
                 recent: RecentPictures | None = None):
        self.pictures = pictures
        self.queue = queue
        self.drawer = drawer
        self.news = news
        self.recent = recent or RecentPictures()
        self._early: dict[tuple[str, int], tuple[float, asyncio.Task]] = {}
        # The drawings begun early until they are stored or left to the job (see drawn_here).
        self._storing: dict[tuple[str, int], asyncio.Task] = {}
        # Called when a drawing begun early is left to the job's workers (they may be asleep).
        self.on_left_to_workers: list[Callable[[], None]] = []

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
        return number != 1 and (adventure_id, number) in self._storing

    def drawing(self) -> set[tuple[str, int]]:
        """The chapters whose picture is being drawn early: their jobs' workers pass them over."""
        return {key for key, (_, task) in self._early.items() if not task.done()}

    def story_written(self, chapter: tuple[str, int], text: str) -> None:
        horizon = time.monotonic() - EARLY_KEEP_SECONDS
        for key, (began, task) in list(self._early.items()):
            if began < horizon:  # its chapter was never stored (or its job ran elsewhere)
                task.cancel()
                del self._early[key]
        task = asyncio.ensure_future(self.drawer.scene(*chapter, text))
        task.add_done_callback(_quietly)  # its job reads the result; an error there is logged there
        self._early[chapter] = (time.monotonic(), task)
        storing = asyncio.create_task(self._store_early(chapter, task), name=f"picture {chapter} stored")
        self._storing[chapter] = storing
        storing.add_done_callback(lambda done: self._stored_or_left(chapter, done))

    async def _store_early(self, chapter: tuple[str, int], drawing: asyncio.Future) -> None:
        """The drawing begun early, stored with its job's end once drawn; else left to the job."""
        try:
            drawn = await asyncio.shield(drawing)
        except Exception:  # a failed drawing is the job's first attempt: left to it (its worker logs it)
            drawn = _FAILED
        if drawn is not _FAILED and self._early.get(chapter, (0, None))[1] is drawing:  # no worker took it meanwhile
            try:
                if await self.queue.finish_pending(SCENE_JOB, *chapter,
                                                   None if drawn is None else self._saved(*chapter, SCENE, drawn)):
                    self._early.pop(chapter, None)
                    self._stored_or_left(chapter)
                    self.news.notify(*chapter, _slots_after_scene(*chapter, drawn))
                    return
            except Exception:
                log.exception("the picture of %s/%s could not be stored as drawn; its job stores it", *chapter)
        self._stored_or_left(chapter)
        self.news.wake(*chapter)  # its streams here look at the store again, and wait for the job's news
        for wake in self.on_left_to_workers:
            wake()

    def _saved(self, adventure_id: str, number: int, option: int, drawn: Drawn) -> ResultWrite:
        """The write that stores the picture; its bytes are served from memory meanwhile (no
        page names its address before it is stored)."""
        drawing = drawn.drawing
        self.recent.keep(adventure_id, number, drawing)
        return picture_saved(adventure_id, number, option, drawing.data, drawing.content_type, drawn.alt,
                             drawn.prompt, drawing.digest)

    def _stored_or_left(self, chapter: tuple[str, int], storing: asyncio.Task | None = None) -> None:
        """The early drawing's storing task (by default, the one running) has ended what it
        could: no news of the chapter comes from it any more."""
        if self._storing.get(chapter) is (storing or asyncio.current_task()):
            del self._storing[chapter]

    async def scene(self, job: Job) -> ResultWrite | None:
        key = (job.adventure_id, job.chapter_number)
        early = self._early.pop(key, None)
        # The drawing begun early is this job's first attempt: if it failed, so did the
        # attempt, and the job's retries draw afresh.
        drawn = await early[1] if early is not None else await self.drawer.scene(*key)
        return None if drawn is None else self._saved(*key, SCENE, drawn)  # None: too little was fit to draw

    async def options(self, job: Job) -> ResultWrite | None:
        """The choices' pictures, drawn at once and stored together with the job's end (one
        write, not four: fifty adventures starting at once queued 200 writes). When some
        fail, those drawn are stored all the same, and the job's retry draws only the rest."""
        drawn = await self.pictures.options_drawn(job.adventure_id)
        numbers = [number for number in range(1, OFFER_SIZE + 1) if number not in drawn]
        results = await asyncio.gather(*(self.drawer.option(job.adventure_id, number) for number in numbers),
                                       return_exceptions=True)
        saved = _together([self._saved(job.adventure_id, 1, number, result)
                           for number, result in zip(numbers, results, strict=True) if isinstance(result, Drawn)])
        if errors := [r for r in results if isinstance(r, BaseException)]:
            if saved is not None:
                await self.pictures.save(saved)
                self.news.notify(job.adventure_id, 1)
            raise errors[0]
        return saved


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
