"""The adventure repository: every read and write of adventures, chapters, answers,
summaries and characters goes through here, each write in one transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from service.store.db import Sessions
from service.store.models import Adventure, Answer, Chapter, Character, Job, Summary, utcnow


@dataclass(frozen=True)
class ChoiceOutcome:
    """What recording a choice did: `created` is False when the same choice was already stored."""

    next_chapter: Chapter | None
    created: bool


class ChoiceConflict(Exception):
    """A different choice was already recorded for that chapter."""


class AdventureStore:
    def __init__(self, sessions: Sessions):
        self.sessions = sessions

    async def create_adventure(self, adventure: Adventure, first_chapter_type: str) -> Adventure:
        async with self.sessions.begin() as session:
            session.add(adventure)
            await session.flush()
            session.add(Chapter(adventure_id=adventure.id, number=1, type=first_chapter_type))
        return adventure

    async def adventure(self, adventure_id: str) -> Adventure | None:
        async with self.sessions() as session:
            return await session.get(Adventure, adventure_id)

    async def chapters(self, adventure_id: str) -> list[Chapter]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Chapter).where(Chapter.adventure_id == adventure_id).order_by(Chapter.number)
            )
            return list(rows)

    async def chapter(self, adventure_id: str, number: int) -> Chapter | None:
        async with self.sessions() as session:
            return await session.scalar(
                select(Chapter).where(Chapter.adventure_id == adventure_id, Chapter.number == number)
            )

    async def answers(self, adventure_id: str) -> list[Answer]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Answer).where(Answer.adventure_id == adventure_id).order_by(Answer.chapter_number)
            )
            return list(rows)

    async def set_chapter_state(self, adventure_id: str, number: int, state: str, error: str | None = None) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(Chapter)
                .where(Chapter.adventure_id == adventure_id, Chapter.number == number, Chapter.state != "complete")
                .values(state=state, error=error)
            )

    async def complete_chapter(self, adventure_id: str, number: int, values: dict, job_kinds: list[str]) -> None:
        """Store the finished chapter and enqueue its deferred jobs in the same transaction."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(Chapter)
                .where(Chapter.adventure_id == adventure_id, Chapter.number == number)
                .values(state="complete", error=None, completed_at=utcnow(), **values)
            )
            for kind in job_kinds:
                session.add(Job(kind=kind, adventure_id=adventure_id, chapter_number=number))
            if not values.get("choices"):
                await session.execute(
                    update(Adventure).where(Adventure.id == adventure_id).values(finished_at=utcnow())
                )

    async def record_choice(self, answer: Answer, next_type: str | None, agency: str | None) -> ChoiceOutcome:
        """Store the player's answer and create the next chapter, or tell what was already there."""
        try:
            async with self.sessions.begin() as session:
                session.add(answer)
                await session.flush()
                if agency is not None:
                    await session.execute(
                        update(Adventure).where(Adventure.id == answer.adventure_id).values(agency=agency)
                    )
                next_chapter = None
                if next_type is not None:
                    next_chapter = Chapter(
                        adventure_id=answer.adventure_id, number=answer.chapter_number + 1, type=next_type
                    )
                    session.add(next_chapter)
            return ChoiceOutcome(next_chapter, created=True)
        except IntegrityError:
            return await self._existing_choice(answer)

    async def _existing_choice(self, answer: Answer) -> ChoiceOutcome:
        async with self.sessions() as session:
            stored = await session.scalar(
                select(Answer).where(
                    Answer.adventure_id == answer.adventure_id, Answer.chapter_number == answer.chapter_number
                )
            )
        if stored is None or stored.choice != answer.choice:
            raise ChoiceConflict(answer.chapter_number)
        return ChoiceOutcome(await self.chapter(answer.adventure_id, answer.chapter_number + 1), created=False)

    async def interrupt_unfinished(self) -> int:
        """At start-up: chapters a stopped process was writing can only be written again."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(Chapter).where(Chapter.state == "writing").values(state="interrupted")
            )
            return result.rowcount or 0

    async def summaries(self, adventure_id: str) -> dict[int, Summary]:
        async with self.sessions() as session:
            rows = await session.scalars(select(Summary).where(Summary.adventure_id == adventure_id))
            return {row.chapter_number: row for row in rows}

    async def save_summary(self, adventure_id: str, number: int, title: str, summary: str) -> None:
        """Idempotent: a job that runs twice leaves one summary, the newest."""
        async with self.sessions.begin() as session:
            stored = await session.scalar(
                select(Summary).where(Summary.adventure_id == adventure_id, Summary.chapter_number == number)
            )
            if stored is None:
                session.add(Summary(adventure_id=adventure_id, chapter_number=number, title=title, summary=summary))
            else:
                stored.title, stored.summary = title, summary

    async def characters(self, adventure_id: str) -> list[Character]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Character).where(Character.adventure_id == adventure_id).order_by(Character.name)
            )
            return list(rows)

    async def merge_characters(self, adventure_id: str, found: dict[str, str]) -> None:
        """New names are added, changed descriptions replaced, unchanged ones left alone."""
        async with self.sessions.begin() as session:
            stored = {
                c.name.casefold(): c
                for c in await session.scalars(select(Character).where(Character.adventure_id == adventure_id))
            }
            for name, description in found.items():
                existing = stored.get(name.casefold())
                if existing is None:
                    session.add(Character(adventure_id=adventure_id, name=name, description=description))
                elif existing.description != description:
                    existing.description = description
