"""Drawing the pictures, in the picture process (service/picture_worker.py). A chapter's
scene: the helper model picks the chapter's most picturable moment, which becomes the alt
text and, with the characters' stored looks and the world's sights, the image prompt. A
first chapter's choice: its own words in the world's sights. Whatever a model wrote passes
the child-safety screen before it reaches a prompt or an alt text; a picture with too
little left is not drawn at all. Only reads the store: what is drawn is stored by the
server (jobs/pictures.py), the database's one writer.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from service.chapters.briefs import question_for
from service.chapters.screening import ChildSafety, log_hits, off_the_loop, unsayable_answers
from service.domain.agency import AGENCY_OPTIONS, offer_agency
from service.domain.fidelity import is_lesson_check, story_text
from service.domain.pictures import option_alt, option_prompt, parse_scene, recurring_parts, scene_prompt
from service.domain.story import Catalog, ChapterType
from service.llm.client import ModelClient
from service.llm.formats import SCENE as SCENE_SHAPE
from service.llm.images import Drawing, ImageClient
from service.llm.prompts import picture_messages
from service.store.adventures import AdventureStore
from service.store.models import Adventure, Chapter
from service.store.pictures import PictureStore

log = logging.getLogger(__name__)
# A scene is one or two sentences: a short reply.
SCENE_MAX_TOKENS = 120
# Parts of prompts whose screening is kept (characters' looks make new ones as adventures go).
FIT_PARTS_KEPT = 10_000


@dataclass(frozen=True)
class Drawn:
    """A picture as drawn: its alt text (a chapter's scene, a choice's words), its prompt and its bytes."""
    alt: str
    prompt: str
    drawing: Drawing


class Drawings:
    def __init__(self, store: AdventureStore, pictures: PictureStore, catalog: Catalog, model: ModelClient,
                 images: ImageClient, safety: ChildSafety):
        self.store = store
        self.pictures = pictures
        self.catalog = catalog
        self.model = model
        self.images = images
        self.safety = safety
        self._fit: dict[str, bool] = {}  # parts of prompts (and alt texts) screened, and whether they passed

    async def scene(self, adventure_id: str, number: int, text: str | None = None) -> Drawn | None:
        """The chapter's picture, from `text` (its story) or else from the stored chapter;
        None when too little of it was fit to draw."""
        inputs = await self.pictures.scene_inputs(adventure_id, number)
        adventure, chapter = inputs.adventure, inputs.chapter
        story = text if text is not None else story_text(chapter.text)
        reply = await self.model.complete(picture_messages(number, story), max_tokens=SCENE_MAX_TOKENS,
                                         shape=SCENE_SHAPE, background=True)
        scene = await off_the_loop(self._scene, adventure, chapter, story, reply)
        if scene is None:
            log.info("picture of %s/%s: too little of the scene was fit to draw; no picture", adventure_id, number)
            return None
        world = self.catalog.worlds[adventure.world_key]
        looks = [(c.name, c.description) for c in inputs.characters]
        if not await off_the_loop(self._parts_fit, recurring_parts(scene, looks, world), adventure_id, number):
            return None
        prompt = scene_prompt(scene, looks, world)
        return Drawn(scene, prompt, await self.images.draw(prompt))

    async def option(self, adventure_id: str, number: int) -> Drawn | None:
        """The picture of the first chapter's choice `number` (from 1); None when its words did not pass."""
        adventure = await self.store.adventure(adventure_id)
        world = self.catalog.worlds[adventure.world_key]
        option = offer_agency(random.Random(adventure.seed))[number - 1]  # the first chapter's choices, in order
        alt, prompt = option_alt(option, world), option_prompt(option, world)
        # The service's own words, screened all the same: a picture is drawn only from what passes whole.
        if not await off_the_loop(self._fit_option, alt, prompt, adventure_id):
            log.warning("the picture of choice %s of %s was not drawn: the screen took out part of it", number,
                        adventure_id)
            return None
        return Drawn(alt, prompt, await self.images.draw(prompt))

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


def _opening(text: str) -> str:
    return next((p for p in text.split("\n\n") if p.strip() and not is_lesson_check(p)), "")
