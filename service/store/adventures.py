"""The adventure repository: every read and write of adventures, chapters, answers,
summaries and characters goes through here, each write in one transaction.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.domain.chapter_events import FIRST_LAST_ID
from service.domain.lifecycle import TO_BE_WRITTEN, UNFINISHED, ChapterState
from service.store.db import Sessions
from service.store.models import Adventure, Answer, Chapter, Character, Job, Summary, utcnow

# The kinds of picture job (the store enqueues them; service/jobs/pictures.py runs them).
SCENE_JOB = "picture"
OPTIONS_JOB = "option-pictures"

# A write that another transaction carries out, e.g. a job's result stored with its `done`.
ResultWrite = Callable[[Session], None]

# The statements on a choice's way to the model and a stream's way to the player, built
# once: building a statement costs more than running it. `:last` is the chapter before
# the one to be written.
_STORY_START = (
    select(Adventure, Chapter, Answer).select_from(Adventure)
    .outerjoin(Chapter, and_(Chapter.adventure_id == Adventure.id, Chapter.number == bindparam("last")))
    .outerjoin(Answer, and_(Answer.adventure_id == Adventure.id, Answer.chapter_number == bindparam("last")))
    .where(Adventure.id == bindparam("adventure_id"))
)
_ADVENTURE_AT = (
    select(Adventure, Chapter).select_from(Adventure)
    .outerjoin(Chapter, and_(Chapter.adventure_id == Adventure.id, Chapter.number == bindparam("number")))
    .where(Adventure.id == bindparam("adventure_id"))
)
_CHAPTER = select(Chapter).where(Chapter.adventure_id == bindparam("adventure_id"),
                                 Chapter.number == bindparam("number"))
# The writes of a choice and of a finished chapter, as Core statements on the tables: an ORM
# unit of work (identity map, flush order, events) cost more than the statements it ran.
_ADVENTURES, _CHAPTERS, _ANSWERS, _JOBS = (Adventure.__table__, Chapter.__table__, Answer.__table__,
                                           Job.__table__)
_INSERT_ANSWER = _ANSWERS.insert()
_INSERT_CHAPTER = _CHAPTERS.insert()
_INSERT_JOBS = _JOBS.insert()
_SET_AGENCY = (_ADVENTURES.update().where(_ADVENTURES.c.id == bindparam("of_adventure"))
               .values(agency=bindparam("new_agency", type_=_ADVENTURES.c.agency.type)))
_ADVENTURE_FINISHED = (_ADVENTURES.update().where(_ADVENTURES.c.id == bindparam("of_adventure"))
                       .values(finished_at=bindparam("at", type_=_ADVENTURES.c.finished_at.type)))
# What a finished chapter stores, and what it stores when a value is not given.
_FINISHED_VALUES = {"text": "", "choices": [], "quality": {}, "first_token_seconds": None}
_COMPLETE = (
    _CHAPTERS.update()
    .where(_CHAPTERS.c.adventure_id == bindparam("of_adventure"), _CHAPTERS.c.number == bindparam("of_number"))
    .values(state=ChapterState.COMPLETE, error=None,
            completed_at=bindparam("at", type_=_CHAPTERS.c.completed_at.type),
            **{name: bindparam(f"new_{name}", type_=_CHAPTERS.c[name].type) for name in _FINISHED_VALUES})
)
_SUMMARIES = select(Summary).where(Summary.adventure_id == bindparam("adventure_id"))
_CHARACTERS = select(Character).where(Character.adventure_id == bindparam("adventure_id")).order_by(Character.name)
# The jobs' result writes, Core too: as ORM work a summary's cost the database's writer 2.4
# ms and a chapter's characters' 1.1 ms; as Core, 0.9 and 0.8 ms.
_SUMMARY_TABLE, _CHARACTER_TABLE = Summary.__table__, Character.__table__
_QUALITY = select(_CHAPTERS.c.quality).where(_CHAPTERS.c.adventure_id == bindparam("of_adventure"),
                                             _CHAPTERS.c.number == bindparam("of_number"))
_SET_QUALITY = (_CHAPTERS.update().where(_CHAPTERS.c.adventure_id == bindparam("of_adventure"),
                                         _CHAPTERS.c.number == bindparam("of_number"))
                .values(quality=bindparam("new_quality", type_=_CHAPTERS.c.quality.type)))
_REPLACE_SUMMARY = (_SUMMARY_TABLE.update().where(_SUMMARY_TABLE.c.adventure_id == bindparam("of_adventure"),
                                                  _SUMMARY_TABLE.c.chapter_number == bindparam("of_number"))
                    .values(title=bindparam("new_title"), summary=bindparam("new_summary")))
_INSERT_SUMMARY = _SUMMARY_TABLE.insert()
_STORED_CHARACTERS = select(_CHARACTER_TABLE.c.id, _CHARACTER_TABLE.c.name, _CHARACTER_TABLE.c.description).where(
    _CHARACTER_TABLE.c.adventure_id == bindparam("adventure_id"))
_REDESCRIBE = (_CHARACTER_TABLE.update().where(_CHARACTER_TABLE.c.id == bindparam("character_id"))
               .values(description=bindparam("new_description"), updated_at=bindparam("at")))
_INSERT_CHARACTER = _CHARACTER_TABLE.insert()


@dataclass(frozen=True)
class ChoiceOutcome:
    """What recording a choice did: `created` is False when the same choice was already stored."""

    next_chapter: Chapter | None
    created: bool


class ChoiceConflict(Exception):
    """A different choice was already recorded for that chapter."""


@dataclass(frozen=True)
class StorySoFar:
    """What a chapter is written from: its adventure, the chapter and answer that led to it,
    and what the deferred jobs have written down so far (chapter summaries, characters)."""

    adventure: Adventure
    last_chapter: Chapter | None = None
    last_answer: Answer | None = None
    summaries: dict[int, Summary] = field(default_factory=dict)
    characters: list[Character] = field(default_factory=list)


class AdventureStore:
    def __init__(self, sessions: Sessions, pictures: bool = False, picture_hold: float = 0.0):
        self.sessions = sessions
        # With an image model, an adventure's start and each finished chapter also enqueue
        # their picture jobs, in the same transaction as the rest.
        self.pictures = pictures
        # Where this process begins their pictures itself, the picture jobs fall due only this
        # many seconds later, so that no worker (of another process) draws them a second time
        # meanwhile; the drawing ends the job, or makes it due at once if it cannot
        # (jobs/pictures.py). Should this process die, they fall due when the hold ends.
        self.picture_hold = timedelta(seconds=picture_hold)

    async def create_adventure(self, adventure: Adventure, first_chapter_type: str) -> Adventure:
        """The adventure and its first chapter, marked as being written: its generation starts next."""
        def create(session: Session) -> Adventure:
            session.add(adventure)
            session.flush()
            session.add(Chapter(adventure_id=adventure.id, number=1, type=first_chapter_type,
                                state=ChapterState.WRITING))
            if self.pictures:
                session.execute(insert(Job), [{"kind": OPTIONS_JOB, "adventure_id": adventure.id, "chapter_number": 1,
                                               "run_after": utcnow() + self.picture_hold}])
            return adventure

        return await self.sessions.write(create)

    async def adventure(self, adventure_id: str) -> Adventure | None:
        return await self.sessions.read(lambda session: session.get(Adventure, adventure_id))

    async def adventure_at(self, adventure_id: str, number: int,
                           background: bool = False) -> tuple[Adventure | None, Chapter | None]:
        """An adventure and its chapter `number`, in one read (`background`: see store/db.py)."""
        def read(session: Session) -> tuple[Adventure | None, Chapter | None]:
            found = session.execute(_ADVENTURE_AT, {"adventure_id": adventure_id, "number": number}).first()
            return (found[0], found[1]) if found else (None, None)

        return await self.sessions.lane(background).read(read)

    async def chapters(self, adventure_id: str) -> list[Chapter]:
        return await self.sessions.read(lambda session: _chapters(session, adventure_id))

    async def chapter(self, adventure_id: str, number: int) -> Chapter | None:
        return await self.sessions.read(lambda session: _chapter(session, adventure_id, number))

    async def chapter_and_characters(self, adventure_id: str, number: int) -> tuple[Chapter | None, list[Character]]:
        """A chapter and the adventure's characters so far, in one read."""
        return await self.sessions.read(lambda session: (_chapter(session, adventure_id, number),
                                                         _characters(session, adventure_id)))

    async def answers(self, adventure_id: str) -> list[Answer]:
        return await self.sessions.read(lambda session: list(session.scalars(
            select(Answer).where(Answer.adventure_id == adventure_id).order_by(Answer.chapter_number)
        )))

    async def story_so_far(self, adventure_id: str, number: int) -> StorySoFar | None:
        """Everything chapter `number` is written from, in one read; None for no such adventure."""
        return await self.sessions.read(lambda session: _story_so_far(session, adventure_id, number))

    async def begin_attempt(self, adventure_id: str, number: int, last_event_id: int,
                            replacing: int | None = None) -> bool:
        """A chapter not yet complete is being written again (pending, failed, interrupted, or
        left 'writing' by a move that was cut off): its new attempt's stream ends at
        `last_event_id`. With `replacing` (the last event id of the attempt it follows), only
        if no one else began one since: True when this attempt is the one begun."""
        condition = [] if replacing is None else [Chapter.last_event_id == replacing,
                                                  Chapter.state.in_(sorted(UNFINISHED))]
        return await self._unless_complete(adventure_id, number, *condition, state=ChapterState.WRITING,
                                           error=None, last_event_id=last_event_id) > 0

    async def fail_chapter(self, adventure_id: str, number: int, message: str) -> None:
        """The chapter could not be written; `message` is shown to the player with a retry."""
        await self._unless_complete(adventure_id, number, state=ChapterState.FAILED, error=message)

    async def interrupt_attempt(self, adventure_id: str, number: int,
                                last_event_id: int) -> tuple[Adventure | None, Chapter | None]:
        """The attempt ending at `last_event_id` was cut off with its process: unless it was
        finished (or another attempt began), the chapter is interrupted. Answers the adventure
        and the chapter as they are then."""
        def interrupt(session: Session) -> tuple[Adventure | None, Chapter | None]:
            session.execute(update(Chapter).where(
                Chapter.adventure_id == adventure_id, Chapter.number == number,
                Chapter.last_event_id == last_event_id, Chapter.state.in_(sorted(TO_BE_WRITTEN)),
            ).values(state=ChapterState.INTERRUPTED))
            found = session.execute(_ADVENTURE_AT, {"adventure_id": adventure_id, "number": number}).first()
            return (found[0], found[1]) if found else (None, None)

        return await self.sessions.write(interrupt)

    async def _unless_complete(self, adventure_id: str, number: int, *condition, **values) -> int:
        return await self.sessions.write(lambda session: session.execute(
            update(Chapter)
            .where(Chapter.adventure_id == adventure_id, Chapter.number == number,
                   Chapter.state != ChapterState.COMPLETE, *condition)
            .values(**values)
        ).rowcount)

    async def complete_chapter(self, adventure_id: str, number: int, values: dict, job_kinds: list[str]) -> None:
        """The finished chapter is stored, and its deferred jobs enqueued, in one transaction."""
        held = {SCENE_JOB: self.picture_hold} if self.pictures else {}
        await self.sessions.write(lambda session: _complete(session, adventure_id, number, values,
                                                            [*job_kinds, *held], held))

    async def record_choice(self, answer: Answer, next_type: str | None, agency: str | None) -> ChoiceOutcome:
        """Store the player's answer and create the next chapter, marked as being written (its
        generation is under way), or tell what was already there."""
        try:
            next_chapter = await self.sessions.write(lambda session: _record_choice(session, answer, next_type, agency))
            return ChoiceOutcome(next_chapter, created=True)
        except IntegrityError:
            return await self._existing_choice(answer)

    async def _existing_choice(self, answer: Answer) -> ChoiceOutcome:
        def read(session: Session) -> tuple[Answer | None, Chapter | None]:
            stored = session.scalar(select(Answer).where(
                Answer.adventure_id == answer.adventure_id, Answer.chapter_number == answer.chapter_number))
            return stored, _chapter(session, answer.adventure_id, answer.chapter_number + 1)

        stored, next_chapter = await self.sessions.read(read)
        if stored is None or stored.choice != answer.choice:
            raise ChoiceConflict(answer.chapter_number)
        return ChoiceOutcome(next_chapter, created=False)

    async def warm_up(self) -> None:
        """Rehearse a move (read the story, store a choice, complete a chapter, open its
        stream) on a made-up adventure, then roll it all back. The first use of each
        statement compiles it, 15–20 ms measured, which would otherwise fall on the first
        choice a player makes after a start."""
        def rehearse(session: Session) -> None:
            adventure_id = "~warm-up"
            session.add(Adventure(id=adventure_id, owner_hash="", world_key="", topic_key="", seed=0,
                                  plan=[], question_ids=[]))
            session.add(Chapter(adventure_id=adventure_id, number=1, type="STORY", state=ChapterState.COMPLETE))
            session.flush()
            _story_so_far(session, adventure_id, 2)
            _record_choice(session, Answer(adventure_id=adventure_id, chapter_number=1, choice="~"), "STORY", None)
            session.execute(_ADVENTURE_AT, {"adventure_id": adventure_id, "number": 2}).first()
            _complete(session, adventure_id, 2, {"text": "", "choices": ["~"]}, ["summary"])
            session.rollback()

        await self.sessions.read(rehearse)

    async def interrupt_unfinished(self) -> int:
        """At start-up: chapters a stopped process was writing can only be written again. Their
        last event id stays that of the attempt cut off: its end follows whatever it had sent."""
        return await self.sessions.write(lambda session: session.execute(
            update(Chapter).where(Chapter.state == ChapterState.WRITING).values(state=ChapterState.INTERRUPTED)
        ).rowcount or 0)

    async def summaries(self, adventure_id: str) -> dict[int, Summary]:
        return await self.sessions.read(lambda session: _summaries(session, adventure_id))

    async def characters(self, adventure_id: str) -> list[Character]:
        return await self.sessions.read(lambda session: _characters(session, adventure_id))


def summary_saved(adventure_id: str, number: int, title: str, summary: str, source: str = "model") -> ResultWrite:
    """Idempotent: a job that runs twice leaves one summary, the newest. Where it came from
    ("model", or "extract" of the chapter) is noted in the chapter's quality record."""
    def save(session: Session) -> None:
        of_chapter = {"of_adventure": adventure_id, "of_number": number}
        quality = session.execute(_QUALITY, of_chapter).scalar_one_or_none()
        session.execute(_SET_QUALITY, {**of_chapter, "new_quality": {**(quality or {}), "summary": source}})
        if not session.execute(_REPLACE_SUMMARY, {**of_chapter, "new_title": title, "new_summary": summary}).rowcount:
            session.execute(_INSERT_SUMMARY, {"adventure_id": adventure_id, "chapter_number": number, "title": title,
                                              "summary": summary, "created_at": utcnow()})

    return save


def characters_merged(adventure_id: str, found: dict[str, str]) -> ResultWrite:
    """New names are added, changed descriptions replaced, unchanged ones left alone."""
    def merge(session: Session) -> None:
        rows = session.execute(_STORED_CHARACTERS, {"adventure_id": adventure_id})
        stored = {row.name.casefold(): row for row in rows}
        now = utcnow()
        for name, description in found.items():
            existing = stored.get(name.casefold())
            if existing is None:
                session.execute(_INSERT_CHARACTER, {"adventure_id": adventure_id, "name": name,
                                                    "description": description, "updated_at": now})
            elif existing.description != description:
                session.execute(_REDESCRIBE, {"character_id": existing.id, "new_description": description, "at": now})

    return merge


def _story_so_far(session: Session, adventure_id: str, number: int) -> StorySoFar | None:
    start = session.execute(_STORY_START, {"adventure_id": adventure_id, "last": number - 1}).first()
    if start is None:
        return None
    adventure, last_chapter, last_answer = start
    return StorySoFar(adventure, last_chapter, last_answer,
                      _summaries(session, adventure_id), _characters(session, adventure_id))


def _record_choice(session: Session, answer: Answer, next_type: str | None, agency: str | None) -> Chapter | None:
    answer.created_at = answer.created_at or utcnow()
    # A second answer to the chapter stops here (the unique key), before anything else.
    session.execute(_INSERT_ANSWER, {column: getattr(answer, column) for column in _ANSWER_COLUMNS})
    if agency is not None:
        session.execute(_SET_AGENCY, {"of_adventure": answer.adventure_id, "new_agency": agency})
    if next_type is None:
        return None
    next_chapter = Chapter(adventure_id=answer.adventure_id, number=answer.chapter_number + 1, type=next_type,
                           state=ChapterState.WRITING, text="", choices=[], question_id=None, error=None,
                           last_event_id=FIRST_LAST_ID, quality={}, first_token_seconds=None, created_at=utcnow(),
                           completed_at=None)
    next_chapter.id = session.execute(_INSERT_CHAPTER, {column: getattr(next_chapter, column)
                                                        for column in _NEW_CHAPTER_COLUMNS}).inserted_primary_key[0]
    return next_chapter


_ANSWER_COLUMNS = ("adventure_id", "chapter_number", "choice", "question_id", "correct", "created_at")
_NEW_CHAPTER_COLUMNS = ("adventure_id", "number", "type", "state", "text", "choices", "question_id", "error",
                        "last_event_id", "quality", "first_token_seconds", "created_at", "completed_at")


def _complete(session: Session, adventure_id: str, number: int, values: dict, job_kinds: list[str],
              held: dict[str, timedelta] | None = None) -> None:
    """`held`: jobs that fall due so much later (see AdventureStore.picture_hold)."""
    now = utcnow()
    session.execute(_COMPLETE, {"of_adventure": adventure_id, "of_number": number, "at": now,
                                **{f"new_{name}": values.get(name, empty) for name, empty in _FINISHED_VALUES.items()}})
    if job_kinds:
        session.execute(_INSERT_JOBS, [{"kind": kind, "adventure_id": adventure_id, "chapter_number": number,
                                        "run_after": now + (held or {}).get(kind, timedelta())} for kind in job_kinds])
    if not values.get("choices"):
        session.execute(_ADVENTURE_FINISHED, {"of_adventure": adventure_id, "at": now})


def _chapter(session: Session, adventure_id: str, number: int) -> Chapter | None:
    return session.scalar(_CHAPTER, {"adventure_id": adventure_id, "number": number})


def _chapters(session: Session, adventure_id: str) -> list[Chapter]:
    return list(session.scalars(select(Chapter).where(Chapter.adventure_id == adventure_id).order_by(Chapter.number)))


def _summaries(session: Session, adventure_id: str) -> dict[int, Summary]:
    return {row.chapter_number: row for row in session.scalars(_SUMMARIES, {"adventure_id": adventure_id})}


def _characters(session: Session, adventure_id: str) -> list[Character]:
    return list(session.scalars(_CHARACTERS, {"adventure_id": adventure_id}))
