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
from service.store.models import Adventure, Chapter, Character, Job, Picture, utcnow

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


# A picture stored: the slot's picture replaced, or else a new row (Core statements: the ORM's
# unit of work cost more than the statements it ran, for each of hundreds of pictures).
_PICTURES = Picture.__table__
_REPLACE_PICTURE = (
    _PICTURES.update()
    .where(_PICTURES.c.adventure_id == bindparam("of_adventure_id"),
           _PICTURES.c.chapter_number == bindparam("of_chapter_number"), _PICTURES.c.option == bindparam("of_option"))
    .values({name: bindparam(name) for name in ("digest", "data", "content_type", "alt", "prompt")})
)
_INSERT_PICTURE = _PICTURES.insert()
# What a chapter's scene is drawn from, besides its story.
_ADVENTURE_AND_CHAPTER = (
    select(Adventure, Chapter).join(Chapter, Chapter.adventure_id == Adventure.id)
    .where(Adventure.id == bindparam("adventure_id"), Chapter.number == bindparam("number"))
)
_CHARACTERS = select(Character).where(Character.adventure_id == bindparam("adventure_id")).order_by(Character.name)
# A picture with its bytes, and whose adventure it is, in one read.
_OWNED_PICTURE = (
    select(Adventure, Picture).outerjoin(Picture, and_(Picture.adventure_id == Adventure.id,
                                                       Picture.digest == bindparam("digest")))
    .where(Adventure.id == bindparam("adventure_id")).options(undefer(Picture.data)).limit(1)
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
        return await self.sessions.lane(background).read(
            lambda session: _chapter_pictures(session, adventure_id, number))

    async def scenes(self, adventure_id: str) -> dict[int, Picture]:
        """Every chapter's scene picture (without its bytes), by chapter number."""
        return await self.sessions.read(lambda session: {p.chapter_number: p for p in session.scalars(
            select(Picture).where(Picture.adventure_id == adventure_id, Picture.option == SCENE))})

    async def picture(self, adventure_id: str, digest: str,
                      background: bool = False) -> tuple[Adventure | None, Picture | None]:
        """The adventure (whose owner may see the picture) and the picture with its bytes, by
        its address (`background`: see store/db.py)."""
        def read(session: Session) -> tuple[Adventure | None, Picture | None]:
            found = session.execute(_OWNED_PICTURE, {"adventure_id": adventure_id, "digest": digest}).first()
            return (found[0], found[1]) if found is not None else (None, None)

        return await self.sessions.lane(background).read(read)

    async def scene_inputs(self, adventure_id: str, number: int) -> SceneInputs:
        def read(session: Session) -> SceneInputs:
            adventure, chapter = session.execute(_ADVENTURE_AND_CHAPTER,
                                                 {"adventure_id": adventure_id, "number": number}).one()
            return SceneInputs(adventure, chapter, list(session.scalars(_CHARACTERS, {"adventure_id": adventure_id})))

        return await self.sessions.read(read)

    async def options_drawn(self, adventure_id: str) -> set[int]:
        return set(await self.sessions.read(lambda session: session.scalars(
            select(Picture.option).where(Picture.adventure_id == adventure_id, Picture.chapter_number == 1,
                                         Picture.option != SCENE))))

    async def save(self, write: ResultWrite) -> None:
        await self.sessions.write(write)


def picture_saved(adventure_id: str, number: int, option: int, data: bytes, content_type: str, alt: str,
                  prompt: str, digest: str | None = None) -> ResultWrite:
    """Idempotent: a job that runs twice leaves one picture in the slot, the newest.
    `digest`: the data's SHA-256 in hex, where already known."""
    values = {"digest": digest or hashlib.sha256(data).hexdigest(), "data": data, "content_type": content_type,
              "alt": alt, "prompt": prompt}

    def save(session: Session) -> None:
        slot = {"adventure_id": adventure_id, "chapter_number": number, "option": option}
        if not session.execute(_REPLACE_PICTURE, {**{f"of_{k}": v for k, v in slot.items()}, **values}).rowcount:
            session.execute(_INSERT_PICTURE, {**slot, **values, "created_at": utcnow()})

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
