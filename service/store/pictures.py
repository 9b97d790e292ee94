"""The picture repository: pictures are rows with their bytes, read without the bytes
except when a browser asks for one. Also the two kinds of picture job and what a page's
slot shows, read in one go.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import and_, bindparam, select
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


class Shown(NamedTuple):
    """What a page needs of a stored picture: where its bytes are, and its alt text."""

    adventure_id: str
    digest: str
    alt: str


def _job_state(kind: str):
    return (select(Job.state).where(Job.adventure_id == Chapter.adventure_id, Job.chapter_number == Chapter.number,
                                    Job.kind == kind).correlate(Chapter).scalar_subquery())


# A chapter's state, its picture jobs' states and its pictures (a row each, or one row of
# NULLs) in one statement, built once: a picture stream looks at it each time a picture of
# its chapter may have come, and three ORM queries a look cost a fifth of the server's time.
_CHAPTER_PICTURES = (
    select(Chapter.state, _job_state(SCENE_JOB), _job_state(OPTIONS_JOB),
           Picture.option, Picture.adventure_id, Picture.digest, Picture.alt)
    .select_from(Chapter)
    .outerjoin(Picture, and_(Picture.adventure_id == Chapter.adventure_id, Picture.chapter_number == Chapter.number))
    .where(Chapter.adventure_id == bindparam("adventure_id"), Chapter.number == bindparam("number"))
)


@dataclass(frozen=True)
class ChapterPictures:
    """What a chapter's page shows of its pictures: its scene and, in the first chapter, the
    picture beside each choice (by the choice's position, from 1)."""

    number: int
    chapter_state: str = ChapterState.WRITING
    scene: Shown | None = None
    scene_state: SlotState = SlotState.NONE
    options: dict[int, Shown] = field(default_factory=dict)
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

    async def chapter_pictures(self, adventure_id: str, number: int, background: bool = False) -> ChapterPictures:
        """`background`: for a picture stream, whose look no player waits on."""
        sessions = self.sessions.background if background else self.sessions
        return await sessions.read(lambda session: _chapter_pictures(session, adventure_id, number))

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
    rows = session.execute(_CHAPTER_PICTURES, {"adventure_id": adventure_id, "number": number}).all()
    chapter_state, scene_job, options_job = rows[0][:3] if rows else (ChapterState.FAILED, None, None)
    pictures = {row[3]: Shown(*row[4:]) for row in rows if row[3] is not None}
    scene = pictures.pop(SCENE, None)
    # The choices' pictures are drawn while the chapter is written: the chapter's state says nothing of them.
    options_state = slot_state(False, ChapterState.COMPLETE, options_job) if number == 1 else SlotState.NONE
    scene_state = slot_state(scene is not None, chapter_state, scene_job)
    return ChapterPictures(number, chapter_state, scene, scene_state, pictures, options_state)
