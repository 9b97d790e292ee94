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

from service.chapters.briefs import question_for
from service.chapters.screening import log_hits, unsayable_answers
from service.domain.agency import offer_agency
from service.domain.fidelity import is_lesson_check
from service.domain.pictures import option_alt, option_prompt, parse_scene, scene_prompt
from service.domain.story import AgencyOption, ChapterType, StoryWorld
from service.llm.formats import SCENE as SCENE_SHAPE
from service.llm.prompts import picture_messages
from service.store.adventures import ResultWrite
from service.store.models import Adventure, Chapter, Job
from service.store.pictures import PICTURE_JOBS, SCENE, picture_saved

log = logging.getLogger(__name__)
# A scene is one or two sentences: a short reply.
SCENE_MAX_TOKENS = 120


class PictureNews:
    """Wakes the pages' picture streams of a chapter when its pictures may have changed."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, int], asyncio.Event] = {}
        self._waiting: dict[tuple[str, int], int] = {}

    def notify(self, adventure_id: str, number: int) -> None:
        if event := self._events.get((adventure_id, number)):
            event.set()
            self._events[(adventure_id, number)] = asyncio.Event()

    def job_finished(self, job: Job) -> None:
        if job.kind in PICTURE_JOBS:
            self.notify(job.adventure_id, job.chapter_number)

    def chapter_closed(self, generation) -> None:
        self.notify(generation.adventure_id, generation.number)

    async def wait(self, adventure_id: str, number: int, timeout: float) -> None:
        key = (adventure_id, number)
        event = self._events.setdefault(key, asyncio.Event())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._events[key]


async def scene_picture_job(services, job: Job) -> ResultWrite | None:
    inputs = await services.pictures.scene_inputs(job.adventure_id, job.chapter_number)
    adventure, chapter = inputs.adventure, inputs.chapter
    reply = await services.model.complete(picture_messages(chapter.number, chapter.text), max_tokens=SCENE_MAX_TOKENS,
                                          shape=SCENE_SHAPE, background=True)
    scene = _scene(services, adventure, chapter, reply, job)
    if scene is None:
        log.info("picture of %s/%s: too little of the scene was fit to draw; no picture", job.adventure_id,
                 job.chapter_number)
        return None
    world = services.catalog.worlds[adventure.world_key]
    looks = [(c.name, c.description) for c in inputs.characters]
    prompt = _screened_prompt(services, scene_prompt(scene, looks, world), scene, job)
    if prompt is None:
        return None
    drawing = await services.images.draw(prompt)
    return picture_saved(job.adventure_id, job.chapter_number, SCENE, drawing.data, drawing.content_type, scene,
                         prompt)


async def option_pictures_job(services, job: Job) -> None:
    """Each choice's picture is stored as soon as it is drawn; a retry draws only the missing ones."""
    adventure = await services.store.adventure(job.adventure_id)
    world = services.catalog.worlds[adventure.world_key]
    drawn = await services.pictures.options_drawn(adventure.id)
    options = offer_agency(random.Random(adventure.seed))  # the first chapter's choices, in their order
    results = await asyncio.gather(*(_draw_option(services, job, adventure, number, option, world)
                                     for number, option in enumerate(options, start=1) if number not in drawn),
                                   return_exceptions=True)
    if errors := [r for r in results if isinstance(r, BaseException)]:
        raise errors[0]


async def _draw_option(services, job: Job, adventure: Adventure, number: int, option: AgencyOption,
                       world: StoryWorld) -> None:
    alt, prompt = option_alt(option, world), option_prompt(option, world)
    # The service's own words, screened all the same: a picture is drawn only from what passes whole.
    if not (services.safety.fit(alt) and _screened_prompt(services, prompt, prompt, job)):
        log.warning("the picture of choice %s of %s was not drawn: the screen took out part of it", number,
                    adventure.id)
        return
    drawing = await services.images.draw(prompt)
    await services.pictures.save(picture_saved(adventure.id, 1, number, drawing.data, drawing.content_type, alt,
                                               prompt))
    services.picture_news.notify(adventure.id, 1)


def _scene(services, adventure: Adventure, chapter: Chapter, reply: str, job: Job) -> str | None:
    """The helper's scene, screened; when its reply holds none, the chapter's opening stands in."""
    question = question_for(services.catalog, adventure, chapter.number) if chapter.type in (
        ChapterType.LESSON, ChapterType.REFLECT) else None
    answers = unsayable_answers(question) if question else []
    scene = parse_scene(reply) or parse_scene(_opening(chapter.text))
    if scene is None:
        return None
    kept, hits = services.safety.clean(scene, answers)
    log_hits(hits, "a picture's scene", job.adventure_id, job.chapter_number)
    return parse_scene(kept)  # counts the words left again


def _screened_prompt(services, prompt: str, whole: str, job: Job) -> str | None:
    """The prompt screened once more; None unless `whole` (its scene) came through it whole."""
    kept, hits = services.safety.clean(prompt)
    log_hits(hits, "a picture's prompt", job.adventure_id, job.chapter_number)
    kept = " ".join(kept.split())
    return kept if whole.rstrip(".!?") in kept else None


def _opening(text: str) -> str:
    return next((p for p in text.split("\n\n") if p.strip() and not is_lesson_check(p)), "")
