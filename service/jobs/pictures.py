"""Picture jobs. A chapter's scene: the helper model picks the chapter's most picturable
moment, which becomes the alt text and, with the characters' stored looks and the world's
sights, the image prompt. The first chapter's choices: one picture each, drawn as soon as
the adventure exists. Whatever a model wrote passes the child-safety screen before it
reaches a prompt or an alt text; a picture with too little left is not drawn at all.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from service.chapters.briefs import question_for
from service.chapters.screening import ChildSafety, log_hits, off_the_loop, unsayable_answers
from service.domain.agency import AGENCY_OPTIONS, offer_agency
from service.domain.fidelity import is_lesson_check, story_text
from service.domain.pictures import option_alt, option_prompt, parse_scene, recurring_parts, scene_prompt
from service.domain.story import AgencyOption, Catalog, ChapterType, StoryWorld
from service.jobs.work import JobHandler
from service.llm.client import ModelClient
from service.llm.formats import SCENE as SCENE_SHAPE
from service.llm.images import Drawing, ImageClient
from service.llm.prompts import picture_messages
from service.store.adventures import OPTIONS_JOB, SCENE_JOB, AdventureStore, ResultWrite
from service.store.jobs import JobQueue
from service.store.models import Adventure, Chapter, Job
from service.store.pictures import PICTURE_JOBS, SCENE, PictureStore, picture_saved

log = logging.getLogger(__name__)
# A scene is one or two sentences: a short reply.
SCENE_MAX_TOKENS = 120
# A picture begun early whose job has not come for it by then is let go.
EARLY_KEEP_SECONDS = 600.0
# Parts of prompts whose screening is kept (characters' looks make new ones as adventures go).
FIT_PARTS_KEPT = 10_000


class PictureNews:
    """Wakes the pages' picture streams of a chapter when its pictures may have changed; with
    several processes, `send` tells the others (whose streams then `wake`). A stream follows
    its chapter for as long as it is open (`following`): news that comes while it looks at
    the store is kept for its next wait, not lost (it would then have waited out a recheck)."""

    def __init__(self, send: Callable[[str, int], None] | None = None) -> None:
        self._followers: dict[tuple[str, int], set[asyncio.Event]] = {}
        self.send = send

    def notify(self, adventure_id: str, number: int) -> None:
        self.wake(adventure_id, number)
        if self.send is not None:
            self.send(adventure_id, number)

    def wake(self, adventure_id: str, number: int) -> None:
        for news in self._followers.get((adventure_id, number), ()):
            news.set()

    def job_finished(self, job: Job) -> None:
        if job.kind in PICTURE_JOBS:
            self.notify(job.adventure_id, job.chapter_number)

    def stream_started(self, chapter: tuple[str, int]) -> None:
        pass

    def stream_ended(self, chapter: tuple[str, int]) -> None:
        """A chapter closed: its picture job is due, and its slot may now be waited for."""
        self.notify(*chapter)

    @contextlib.contextmanager
    def following(self, adventure_id: str, number: int) -> Iterator[Callable[[float], Awaitable[None]]]:
        """`with news.following(a, n) as wait:` ... `await wait(timeout)` returns at the first
        news since the last wait returned, or after `timeout` seconds."""
        key, news = (adventure_id, number), asyncio.Event()
        self._followers.setdefault(key, set()).add(news)

        async def wait(timeout: float) -> None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await news.wait()
            news.clear()

        try:
            yield wait
        finally:
            followers = self._followers[key]
            followers.discard(news)
            if not followers:
                del self._followers[key]


@dataclass(frozen=True)
class SceneDrawing:
    """A chapter's picture as drawn: its scene (the alt text), its prompt and its bytes."""
    scene: str
    prompt: str
    drawing: Drawing


class PictureJobs:
    """A chapter's picture (its scene) and the first chapter's choices' pictures.

    A chapter's picture is begun as soon as its story is written (`story_written`), while the
    choices block still streams and the chapter is stored, and stored as soon as it is drawn,
    ending its durable job then and there: it waits for no worker (at 50 players, scenes
    waited seconds behind the choices' pictures for one). The job's workers leave such a
    chapter alone while its drawing is under way (`drawing`), and take the job, with the
    drawing if there is one, when it could not be ended so (it failed, the job was not
    stored yet) or was never begun here (another process, a restart)."""

    def __init__(self, store: AdventureStore, pictures: PictureStore, queue: JobQueue, catalog: Catalog,
                 model: ModelClient, images: ImageClient, safety: ChildSafety, news: PictureNews):
        self.store = store
        self.pictures = pictures
        self.queue = queue
        self.catalog = catalog
        self.model = model
        self.images = images
        self.safety = safety
        self._fit: dict[str, bool] = {}  # parts of prompts (and alt texts) screened, and whether they passed
        self.news = news
        self._early: dict[tuple[str, int], tuple[float, asyncio.Task]] = {}
        self._storing: set[asyncio.Task] = set()
        # Called when a drawing begun early is left to the job's workers (they may be asleep).
        self.on_left_to_workers: list[Callable[[], None]] = []

    def handlers(self) -> dict[str, JobHandler]:
        return {SCENE_JOB: self.scene, OPTIONS_JOB: self.options}

    async def stop(self) -> None:
        tasks = [*self._storing, *(task for _, task in self._early.values())]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def drawing(self) -> set[tuple[str, int]]:
        """The chapters whose picture is being drawn early: their jobs' workers pass them over."""
        return {key for key, (_, task) in self._early.items() if not task.done()}

    def story_written(self, chapter: tuple[str, int], text: str) -> None:
        horizon = time.monotonic() - EARLY_KEEP_SECONDS
        for key, (began, task) in list(self._early.items()):
            if began < horizon:  # its chapter was never stored (or its job ran elsewhere)
                task.cancel()
                del self._early[key]
        task = asyncio.create_task(self._draw_scene(*chapter, text), name=f"picture {chapter}")
        task.add_done_callback(_quietly)  # its job reads the result; an error there is logged there
        self._early[chapter] = (time.monotonic(), task)
        storing = asyncio.create_task(self._store_early(chapter, task), name=f"picture {chapter} stored")
        self._storing.add(storing)
        storing.add_done_callback(self._storing.discard)

    async def _store_early(self, chapter: tuple[str, int], drawing: asyncio.Task) -> None:
        """The drawing begun early, stored with its job's end once drawn; else left to the job."""
        with contextlib.suppress(Exception):  # a failed drawing is the job's first attempt: left to it
            drawn = await asyncio.shield(drawing)
            if self._early.get(chapter, (0, None))[1] is drawing:  # not taken by the job's worker meanwhile
                result = None if drawn is None else _scene_saved(*chapter, drawn)
                if await self.queue.finish_pending(SCENE_JOB, *chapter, result):
                    self._early.pop(chapter, None)
                    self.news.notify(*chapter)
                    return
        for wake in self.on_left_to_workers:
            wake()

    async def scene(self, job: Job) -> ResultWrite | None:
        key = (job.adventure_id, job.chapter_number)
        early = self._early.pop(key, None)
        # The drawing begun early is this job's first attempt: if it failed, so did the
        # attempt, and the job's retries draw afresh.
        drawn = await early[1] if early is not None else await self._draw_scene(*key)
        return None if drawn is None else _scene_saved(*key, drawn)  # None: too little was fit to draw

    async def _draw_scene(self, adventure_id: str, number: int, text: str | None = None) -> SceneDrawing | None:
        """The chapter's picture, from `text` (its story) or else from the stored chapter."""
        inputs = await self.pictures.scene_inputs(adventure_id, number)
        adventure, chapter = inputs.adventure, inputs.chapter
        story = text if text is not None else story_text(chapter.text)
        reply = await self.model.complete(picture_messages(number, story), max_tokens=SCENE_MAX_TOKENS,
                                         shape=SCENE_SHAPE, background=True)
        # Screening takes milliseconds of pure Python: off the loop that streams chapters.
        scene = await off_the_loop(self._scene, adventure, chapter, story, reply)
        if scene is None:
            log.info("picture of %s/%s: too little of the scene was fit to draw; no picture", adventure_id, number)
            return None
        world = self.catalog.worlds[adventure.world_key]
        looks = [(c.name, c.description) for c in inputs.characters]
        if not await off_the_loop(self._parts_fit, recurring_parts(scene, looks, world), adventure_id, number):
            return None
        prompt = scene_prompt(scene, looks, world)
        return SceneDrawing(scene, prompt, await self.images.draw(prompt))

    async def options(self, job: Job) -> None:
        """Each choice's picture is stored as soon as it is drawn; a retry draws only the missing ones."""
        adventure = await self.store.adventure(job.adventure_id)
        world = self.catalog.worlds[adventure.world_key]
        drawn = await self.pictures.options_drawn(adventure.id)
        options = offer_agency(random.Random(adventure.seed))  # the first chapter's choices, in their order
        results = await asyncio.gather(*(self._draw_option(job, adventure, number, option, world)
                                         for number, option in enumerate(options, start=1) if number not in drawn),
                                       return_exceptions=True)
        if errors := [r for r in results if isinstance(r, BaseException)]:
            raise errors[0]

    async def _draw_option(self, job: Job, adventure: Adventure, number: int, option: AgencyOption,
                           world: StoryWorld) -> None:
        alt, prompt = option_alt(option, world), option_prompt(option, world)
        # The service's own words, screened all the same: a picture is drawn only from what passes whole.
        if not await off_the_loop(self._fit_option, alt, prompt, job.adventure_id):
            log.warning("the picture of choice %s of %s was not drawn: the screen took out part of it", number,
                        adventure.id)
            return
        drawing = await self.images.draw(prompt)
        await self.pictures.save(picture_saved(adventure.id, 1, number, drawing.data, drawing.content_type, alt,
                                               prompt))
        self.news.notify(adventure.id, 1)

    def _scene(self, adventure: Adventure, chapter: Chapter, story: str, reply: str) -> str | None:
        """The helper's scene, screened; when its reply holds none, the story's opening stands in."""
        question = question_for(self.catalog, adventure, chapter.number) if chapter.type in (
            ChapterType.LESSON, ChapterType.REFLECT) else None
        answers = unsayable_answers(question) if question else []
        scene = parse_scene(reply) or parse_scene(_opening(story))
        if scene is None:
            return None
        kept, hits = self.safety.clean(scene, answers)
        log_hits(hits, "a picture's scene", adventure.id, chapter.number)
        return parse_scene(kept)  # counts the words left again

    def warm_up(self) -> None:
        """Every choice's picture's words in every world, screened before the first adventure
        (fifty adventures starting at once screened them in the first seconds of play)."""
        for world in self.catalog.worlds.values():
            for option in (option for options in AGENCY_OPTIONS.values() for option in options):
                self._fit_option(option_alt(option, world), option_prompt(option, world), "(warm-up)")

    def _fit_option(self, alt: str, prompt: str, adventure_id: str) -> bool:
        # The service's own words, the same for every adventure that offers the option in
        # that world: screened once.
        return self._fit_part(alt, adventure_id, 1) and self._fit_part(prompt, adventure_id, 1)

    def _parts_fit(self, parts: list[str], adventure_id: str, number: int) -> bool:
        """Whether every part of a scene's prompt besides the scene passes the screen whole
        (the scene passed it as it was parsed): the parts recur across pictures, and each is
        screened once (a scene's whole prompt, screened each time, took 4 ms of the
        interpreter per picture)."""
        return all(self._fit_part(part, adventure_id, number) for part in parts)

    def _fit_part(self, part: str, adventure_id: str, number: int) -> bool:
        fit = self._fit.get(part)
        if fit is None:
            kept, hits = self.safety.clean(part)
            log_hits(hits, "a picture's prompt", adventure_id, number)
            fit = not hits and " ".join(kept.split()) == " ".join(part.split())
            if len(self._fit) >= FIT_PARTS_KEPT:
                self._fit.clear()
            self._fit[part] = fit
        return fit


def _scene_saved(adventure_id: str, number: int, drawn: SceneDrawing) -> ResultWrite:
    return picture_saved(adventure_id, number, SCENE, drawn.drawing.data, drawn.drawing.content_type, drawn.scene,
                         drawn.prompt)


def _quietly(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()


def _opening(text: str) -> str:
    return next((p for p in text.split("\n\n") if p.strip() and not is_lesson_check(p)), "")
