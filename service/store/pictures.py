"""The picture repository: pictures are rows with their bytes, read without the bytes
except when a browser asks for one. Also the two kinds of picture job and what a page's
slot shows, read in one go.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from service.domain.lifecycle import ChapterState
from service.domain.pictures import SlotState, slot_state
from service.store.adventures import OPTIONS_JOB, SCENE_JOB, ResultWrite
from service.store.db import Sessions
from service.store.models import Adventure, Chapter, Character, Job, Picture

# A chapter's scene is drawn once its text is stored; the first chapter's choices as soon
# as the adventure exists (they need no chapter text, so they may run while it streams).
PICTURE_JOBS = frozenset({SCENE_JOB, OPTIONS_JOB})
WHILE_STREAMING = frozenset({OPTIONS_JOB})
SCENE = 0


@dataclass(frozen=True)
class ChapterPictures:
    """What a chapter's page shows of its pictures: its scene and, in the first chapter, the
    picture beside each choice (by the choice's position, from 1)."""

    number: int
    chapter_state: str = ChapterState.WRITING
    scene: Picture | None = None
    scene_state: SlotState = SlotState.NONE
    options: dict[int, Picture] = field(default_factory=dict)
    options_state: SlotState = SlotState.NONE

    def option_state(self, option: int) -> SlotState:
        return SlotState.READY if option in self.options else self.options_state

    @property
    def settled(self) -> bool:
        """Nothing more will come: every slot shows its picture or will have none."""
        return self.scene_state != SlotState.PENDING and self.options_state != SlotState.PENDING


@dataclass(frozen=True)
class SceneInputs:
    adventure: Adventure
    chapter: Chapter
    characters: list[Character]


class PictureStore:
    def __init__(self, sessions: Sessions):
        self.sessions = sessions

    async def chapter_pictures(self, adventure_id: str, number: int) -> ChapterPictures:
        return await self.sessions.read(lambda session: _chapter_pictures(session, adventure_id, number))

    async def scenes(self, adventure_id: str) -> dict[int, Picture]:
        """Every chapter's scene picture (without its bytes), by chapter number."""
        return await self.sessions.read(lambda session: {p.chapter_number: p for p in session.scalars(
            select(Picture).where(Picture.adventure_id == adventure_id, Picture.option == SCENE))})

    async def picture(self, adventure_id: str, digest: str) -> Picture | None:
        """A picture with its bytes, by its address."""
        return await self.sessions.read(lambda session: session.scalars(
            select(Picture).where(Picture.adventure_id == adventure_id, Picture.digest == digest)
            .options(undefer(Picture.data)).limit(1)).first())

    async def scene_inputs(self, adventure_id: str, number: int) -> SceneInputs:
        def read(session: Session) -> SceneInputs:
            chapter = session.scalar(select(Chapter).where(Chapter.adventure_id == adventure_id,
                                                           Chapter.number == number))
            characters = session.scalars(select(Character).where(Character.adventure_id == adventure_id)
                                         .order_by(Character.name))
            return SceneInputs(session.get(Adventure, adventure_id), chapter, list(characters))

        return await self.sessions.read(read)

    async def options_drawn(self, adventure_id: str) -> set[int]:
        return set(await self.sessions.read(lambda session: session.scalars(
            select(Picture.option).where(Picture.adventure_id == adventure_id, Picture.chapter_number == 1,
                                         Picture.option != SCENE))))

    async def save(self, write: ResultWrite) -> None:
        await self.sessions.write(write)


def picture_saved(adventure_id: str, number: int, option: int, data: bytes, content_type: str, alt: str,
                  prompt: str) -> ResultWrite:
    """Idempotent: a job that runs twice leaves one picture in the slot, the newest."""
    def save(session: Session) -> None:
        stored = session.scalar(select(Picture).where(
            Picture.adventure_id == adventure_id, Picture.chapter_number == number, Picture.option == option))
        if stored is None:
            stored = Picture(adventure_id=adventure_id, chapter_number=number, option=option)
            session.add(stored)
        stored.digest, stored.data = hashlib.sha256(data).hexdigest(), data
        stored.content_type, stored.alt, stored.prompt = content_type, alt, prompt

    return save


def _chapter_pictures(session: Session, adventure_id: str, number: int) -> ChapterPictures:
    chapter_state = session.scalar(select(Chapter.state).where(Chapter.adventure_id == adventure_id,
                                                               Chapter.number == number)) or ChapterState.FAILED
    jobs = dict(session.execute(select(Job.kind, Job.state).where(
        Job.adventure_id == adventure_id, Job.chapter_number == number, Job.kind.in_(PICTURE_JOBS))).all())
    pictures = list(session.scalars(select(Picture).where(Picture.adventure_id == adventure_id,
                                                          Picture.chapter_number == number)))
    scene = next((p for p in pictures if p.option == SCENE), None)
    options = {p.option: p for p in pictures if p.option != SCENE}
    # The choices' pictures are drawn while the chapter is written: the chapter's state says nothing of them.
    options_state = slot_state(False, ChapterState.COMPLETE, jobs.get(OPTIONS_JOB)) if number == 1 else SlotState.NONE
    scene_state = slot_state(scene is not None, chapter_state, jobs.get(SCENE_JOB))
    return ChapterPictures(number, chapter_state, scene, scene_state, options, options_state)
