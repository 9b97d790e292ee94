"""The game's moves: begin an adventure, answer a chapter's choice, retry a chapter.
Every move checks the rules first and raises a GameError with a message for the player,
so bad input never changes an adventure's state.
"""
from __future__ import annotations

import hashlib
import random
import secrets

from service.chapters.briefs import agency_labels, question_for
from service.chapters.writer import ChapterWriter, Generation
from service.domain.agency import find_agency
from service.domain.lessons import is_correct, sample_questions
from service.domain.plan import make_plan
from service.domain.story import CHAPTER_COUNT, Catalog, ChapterType
from service.store.adventures import AdventureStore, ChoiceConflict
from service.store.models import Adventure, Answer, Chapter

LESSONS_PER_ADVENTURE = 3
NOT_FOUND = "There is no such adventure here. It may belong to another browser."


class GameError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def owner_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Game:
    def __init__(self, catalog: Catalog, store: AdventureStore, writer: ChapterWriter):
        self.catalog = catalog
        self.store = store
        self.writer = writer

    async def begin(self, owner_token: str, world_key: str | None, topic_key: str | None) -> Adventure:
        if world_key not in self.catalog.worlds:
            raise GameError(400, "Please choose one of the story worlds on the start page.")
        if topic_key not in self.catalog.topics:
            raise GameError(400, "Please choose one of the lesson topics on the start page.")
        seed = secrets.randbits(31)
        rng = random.Random(seed)
        questions = sample_questions(self.catalog.topics[topic_key].questions, LESSONS_PER_ADVENTURE, rng)
        plan = make_plan(rng)
        adventure = Adventure(
            id=secrets.token_urlsafe(12), owner_hash=owner_hash(owner_token), world_key=world_key,
            topic_key=topic_key, seed=seed, plan=[t.value for t in plan], question_ids=[q.id for q in questions],
        )
        await self.store.create_adventure(adventure, plan[0].value)
        self.writer.start(adventure.id, 1)
        return adventure

    async def owned(self, adventure_id: str, owner_token: str | None) -> Adventure:
        adventure = await self.store.adventure(adventure_id)
        # Someone else's adventure answers exactly like a missing one.
        if adventure is None or owner_token is None or not secrets.compare_digest(
            adventure.owner_hash, owner_hash(owner_token)
        ):
            raise GameError(404, NOT_FOUND)
        return adventure

    async def chapter(self, adventure: Adventure, number: int) -> Chapter:
        chapter = await self.store.chapter(adventure.id, number) if 1 <= number <= CHAPTER_COUNT else None
        if chapter is None:
            raise GameError(404, f"Chapter {number} of this adventure has not been reached yet.")
        return chapter

    async def current_chapter(self, adventure: Adventure) -> int:
        return max(c.number for c in await self.store.chapters(adventure.id))

    def follow(self, adventure: Adventure, chapter: Chapter) -> Generation | None:
        """The chapter's generation, started now if the chapter is still to be written."""
        if chapter.state == "pending":
            return self.writer.start(adventure.id, chapter.number)
        return self.writer.running(adventure.id, chapter.number)

    async def choose(self, adventure: Adventure, number: int, choice: str | None) -> Chapter:
        chapter = await self.chapter(adventure, number)
        if chapter.state != "complete":
            raise GameError(409, "This chapter is still being written; choose when its choices appear.")
        if not choice or choice not in chapter.choices:
            raise GameError(400, "That choice is not one of this chapter's choices. Please pick one of the buttons.")
        question = question_for(self.catalog, adventure, number) if chapter.type == ChapterType.LESSON else None
        answer = Answer(adventure_id=adventure.id, chapter_number=number, choice=choice,
                        question_id=question.id if question else None,
                        correct=is_correct(question, choice) if question else None)
        next_type = adventure.plan[number] if number < CHAPTER_COUNT else None
        agency = choice if number == 1 and choice in agency_labels(adventure) and find_agency(choice) else None
        try:
            outcome = await self.store.record_choice(answer, next_type, agency)
        except ChoiceConflict:
            raise GameError(409, "You already chose differently in this chapter; the story has moved on.") from None
        if outcome.next_chapter is None:
            raise GameError(409, "This was the last chapter: there is nothing more to choose.")
        self.follow(adventure, outcome.next_chapter)
        return outcome.next_chapter

    async def retry(self, adventure: Adventure, number: int) -> Chapter:
        chapter = await self.chapter(adventure, number)
        if chapter.state in ("failed", "interrupted"):
            await self.store.set_chapter_state(adventure.id, number, "pending")
            chapter.state = "pending"
            self.writer.start(adventure.id, number)
        return chapter
