"""The game's moves: begin an adventure, answer a chapter's choice, retry a chapter.
Every move checks the rules first and raises a GameError with a message for the player,
so bad input never changes an adventure's state.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import NoReturn, Protocol

from service.chapters.briefs import agency_labels, question_for
from service.chapters.events import EventLog
from service.chapters.handoff import HandOff
from service.chapters.writer import ChapterWriter, Generation
from service.domain.agency import find_agency
from service.domain.chapter_events import ChapterEnd, EventIds, Failed, Finished, paragraphs_of
from service.domain.fidelity import Legend, lesson_legend
from service.domain.lessons import is_correct, sample_questions
from service.domain.lifecycle import TO_BE_WRITTEN, UNFINISHED, ChapterState, HandOffState
from service.domain.plan import make_plan
from service.domain.story import CHAPTER_COUNT, Catalog, ChapterType, LessonQuestion, LessonTopic
from service.store.adventures import AdventureStore, ChoiceConflict, StorySoFar
from service.store.models import Adventure, Answer, Chapter

LESSONS_PER_ADVENTURE = 3
INTERRUPTED = "This chapter was interrupted before it was finished. Your earlier chapters and answers are safe."
NOT_WRITTEN = "This chapter could not be written."
NOT_FOUND = "There is no such adventure here. It may belong to another browser."


class GameError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def owner_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def draw(seed: int, topic: LessonTopic) -> tuple[list[LessonQuestion], tuple[ChapterType, ...]]:
    """What an adventure's seed decides as it begins: its lesson questions and its plan.
    (The first chapter's agency offer and each chapter's fallback choices come from it later.)"""
    rng = random.Random(seed)
    return sample_questions(topic.questions, LESSONS_PER_ADVENTURE, rng), make_plan(rng)


class ElsewhereLogs(Protocol):
    """The logs of chapters another server process writes (shared/events.py `Mirrors`)."""

    def follow(self, adventure_id: str, number: int, ids: EventIds) -> EventLog: ...


class Game:
    def __init__(self, catalog: Catalog, store: AdventureStore, writer: ChapterWriter,
                 elsewhere: ElsewhereLogs | None = None):
        self.catalog = catalog
        self.store = store
        self.writer = writer
        # With several processes: a chapter being written that no generation here holds is
        # another process's, and is followed there; it is never started a second time here.
        self.elsewhere = elsewhere
        self._turns = Turns()
        # Called with each new adventure's id once it is stored, before its first chapter starts.
        self.on_begun: list[Callable[[str], None]] = []

    async def begin(self, owner_token: str, world_key: str | None, topic_key: str | None,
                    seed: int | None = None) -> Adventure:
        """A new adventure, its first chapter started. `seed` fixes what it draws (tests and
        benchmarks set it, through ADVENTURE_SEED); None, as for players: a random one."""
        if world_key not in self.catalog.worlds:
            raise GameError(400, "Please choose one of the story worlds on the start page.")
        if topic_key not in self.catalog.topics:
            raise GameError(400, "Please choose one of the lesson topics on the start page.")
        seed = secrets.randbits(31) if seed is None else seed
        questions, plan = draw(seed, self.catalog.topics[topic_key])
        adventure = Adventure(
            id=secrets.token_urlsafe(12), owner_hash=owner_hash(owner_token), world_key=world_key,
            topic_key=topic_key, seed=seed, plan=[t.value for t in plan], question_ids=[q.id for q in questions],
        )
        await self.store.create_adventure(adventure, plan[0].value)
        for begun in self.on_begun:
            begun(adventure.id)
        self.writer.start(adventure.id, 1, EventIds(), StorySoFar(adventure))
        return adventure

    async def owned(self, adventure_id: str, owner_token: str | None) -> Adventure:
        return owned_by(await self.store.adventure(adventure_id), owner_token)

    async def chapter(self, adventure: Adventure, number: int) -> Chapter:
        _check_in_plan(number)
        return _reached(await self.store.chapter(adventure.id, number), number)

    async def owned_chapter(self, adventure_id: str, owner_token: str | None, number: int,
                            background: bool = False) -> tuple[Adventure, Chapter]:
        """The player's adventure and its chapter `number`, in one read: every stream starts
        here (`background`: a stream no player's text waits for, see store/db.py)."""
        _check_in_plan(number)
        adventure, chapter = await self.store.adventure_at(adventure_id, number, background)
        return owned_by(adventure, owner_token), _reached(chapter, number)

    async def owned_events(self, adventure_id: str, owner_token: str | None,
                           number: int) -> tuple[Adventure, EventLog]:
        """The player's adventure and the events of its chapter `number`: every chapter
        stream starts here. A chapter this process is writing (the only writer: one process)
        is streamed from its generation, whose adventure says who owns it: no read stands
        between a choice's stream and its first text (under load a read waited 10-120 ms
        for its thread and the event loop)."""
        _check_in_plan(number)
        if (generation := self._written_here(adventure_id, number)) is not None:
            return owned_by(generation.story.adventure, owner_token), generation.log
        adventure, chapter = await self.owned_chapter(adventure_id, owner_token, number)
        return adventure, self.events(adventure, chapter)

    async def owned_adventure(self, adventure_id: str, owner_token: str | None, number: int) -> Adventure:
        """The player's adventure, whose chapter `number` is reached: a picture stream starts
        here, as its chapter's text ends. A chapter written here answers with no read, as in
        `owned_events`; else the read goes in the background lane (see store/db.py)."""
        _check_in_plan(number)
        if (adventure := self.owned_here(adventure_id, owner_token, number)) is not None:
            return adventure
        adventure, _chapter = await self.owned_chapter(adventure_id, owner_token, number, background=True)
        return adventure

    def owned_here(self, adventure_id: str, owner_token: str | None, number: int) -> Adventure | None:
        """The player's adventure if chapter `number` was written here (see `owned_events`):
        known with no read. None when it was not; 404 when it is not the player's."""
        if (generation := self._written_here(adventure_id, number)) is not None:
            return owned_by(generation.story.adventure, owner_token)
        return None

    def _written_here(self, adventure_id: str, number: int) -> Generation | None:
        """The chapter's generation, when this process alone answers for the chapter (one
        process; the chapter's row stored): its adventure says who owns it."""
        generation = self.writer.running(adventure_id, number)
        if (generation is not None and self.elsewhere is None and generation.story is not None
                and generation.handoff.state is HandOffState.STORED):
            return generation
        return None

    async def current_chapter(self, adventure: Adventure) -> int:
        return max(c.number for c in await self.store.chapters(adventure.id))

    def follow(self, adventure: Adventure, chapter: Chapter) -> Generation | None:
        """The chapter's generation, started now if the chapter is still to be written.

        A chapter stored as 'writing' that no generation here holds was stored by a move cut
        off before it could start it (a restart turns the others into 'interrupted' first);
        with several processes it is another process's (see `events`).
        """
        running = self.writer.running(adventure.id, chapter.number)
        if running is None and chapter.state in TO_BE_WRITTEN and self.elsewhere is None:
            return self._attempt(adventure, chapter)
        return running

    def events(self, adventure: Adventure, chapter: Chapter) -> EventLog:
        """The chapter's events: its generation's while one writes it (or has just written
        it) here, the mirror of another process's, else its stored end."""
        generation = self.writer.running(adventure.id, chapter.number)
        if generation is not None and generation.log.ids.last >= chapter.last_event_id:
            return generation.log  # not an attempt older than the one stored
        ids = EventIds(chapter.last_event_id)
        if chapter.state in TO_BE_WRITTEN:
            if self.elsewhere is not None:
                return self.elsewhere.follow(adventure.id, chapter.number, ids)
            return self._attempt(adventure, chapter).log
        return EventLog.stored(ids, self._stored_end(adventure, chapter))

    async def settle(self, adventure_id: str, number: int, ids: EventIds) -> ChapterEnd:
        """The end of an attempt whose writer is gone with its process: the stored chapter's,
        once it is marked interrupted unless it was finished (or retried) meanwhile."""
        adventure, chapter = await self.store.interrupt_attempt(adventure_id, number, ids.last)
        if adventure is None or chapter is None or chapter.state in TO_BE_WRITTEN:
            return Failed(INTERRUPTED)  # another attempt is under way: this one was cut off
        return self._stored_end(adventure, chapter)

    def _stored_end(self, adventure: Adventure, chapter: Chapter) -> ChapterEnd:
        if chapter.state == ChapterState.COMPLETE:
            return Finished(paragraphs_of(chapter.text), tuple(chapter.choices), self.legend(adventure, chapter))
        if chapter.state == ChapterState.INTERRUPTED:
            return Failed(INTERRUPTED)
        return Failed(chapter.error or NOT_WRITTEN)

    def legend(self, adventure: Adventure, chapter: Chapter) -> Legend | None:
        """What a chapter's choices answer: a LESSON chapter's bank question, shown unless
        its story asked it word for word."""
        kind = ChapterType(chapter.type)
        question = question_for(self.catalog, adventure, chapter.number) if kind is ChapterType.LESSON else None
        return lesson_legend(kind, question, chapter.text)

    async def choose(self, adventure_id: str, owner_token: str | None, number: int,
                     choice: str | None) -> tuple[Adventure, Chapter]:
        """Record the choice and start the next chapter; answers the adventure and that chapter.

        One read checks the move and holds all the next chapter is written from, so only that
        read stands between a click and the model; the choice is stored once the model has the
        request.
        """
        _check_in_plan(number)
        async with self._turns.of(adventure_id):
            story = await self.store.story_so_far(adventure_id, number + 1)
            adventure = owned_by(story.adventure if story else None, owner_token)
            chapter = _reached(story.last_chapter, number)
            _check_choice(chapter, choice)
            try:
                if story.last_answer is not None:  # chosen before: a double click, a second tab
                    return adventure, await self._chosen_before(adventure, story.last_answer, choice)
                return adventure, await self._record(story, chapter, choice)
            except ChoiceConflict:
                raise GameError(409, "You already chose differently in this chapter; the story has moved on.") from None

    async def _record(self, story: StorySoFar, chapter: Chapter, choice: str) -> Chapter:
        adventure, number = story.adventure, chapter.number
        answer = self._answer(adventure, chapter, choice)
        agency = choice if number == 1 and choice in agency_labels(adventure) and find_agency(choice) else None
        if agency is not None:
            adventure.agency = agency  # stored with the answer; the next chapter is written with it
        # The generation stores nothing until the choice is stored (see HandOff); if that
        # fails, it is called off. Until then no page or stream can reach it: the next chapter
        # is not in the store. It gets an answer of its own: the store's is flushed on the
        # database's thread.
        story = replace(story, last_answer=self._answer(adventure, chapter, choice))
        generation = self.writer.start(adventure.id, number + 1, EventIds(), story, HandOff())
        try:
            await generation.handoff.model_asked()
            outcome = await self.store.record_choice(answer, adventure.plan[number], agency)
        except BaseException:
            self.writer.call_off(generation)
            raise
        if outcome.created:
            generation.handoff.stored()
        else:  # another server process stored the same choice a moment ago: its chapter stands
            self.writer.call_off(generation)
            self.follow(adventure, outcome.next_chapter)
        return outcome.next_chapter

    async def _chosen_before(self, adventure: Adventure, stored: Answer, choice: str) -> Chapter:
        if stored.choice != choice:
            raise ChoiceConflict(stored.chapter_number)
        next_chapter = await self.chapter(adventure, stored.chapter_number + 1)
        self.follow(adventure, next_chapter)
        return next_chapter

    def _answer(self, adventure: Adventure, chapter: Chapter, choice: str) -> Answer:
        question = question_for(self.catalog, adventure, chapter.number) if chapter.type == ChapterType.LESSON else None
        return Answer(adventure_id=adventure.id, chapter_number=chapter.number, choice=choice,
                      question_id=question.id if question else None,
                      correct=is_correct(question, choice) if question else None)

    async def retry(self, adventure: Adventure, chapter: Chapter) -> None:
        """A new attempt at a failed or interrupted chapter, begun in the store first: of two
        retries at once (two tabs, two processes) one begins it and the other follows it."""
        if chapter.state in UNFINISHED:
            ids = EventIds(chapter.last_event_id).next_attempt()
            if await self.store.begin_attempt(adventure.id, chapter.number, ids.last, replacing=chapter.last_event_id):
                self.writer.start(adventure.id, chapter.number, ids, begun=True)

    def _attempt(self, adventure: Adventure, chapter: Chapter) -> Generation:
        """A new attempt at a stored chapter; its generation marks it 'writing' again."""
        return self.writer.start(adventure.id, chapter.number, EventIds(chapter.last_event_id).next_attempt())


def owned_by(adventure: Adventure | None, owner_token: str | None) -> Adventure:
    """The adventure if the token is its owner's; else 404, as for one that does not exist."""
    # Someone else's adventure answers exactly like a missing one.
    if adventure is None or owner_token is None or not secrets.compare_digest(
        adventure.owner_hash, owner_hash(owner_token)
    ):
        raise GameError(404, NOT_FOUND)
    return adventure


def _check_choice(chapter: Chapter, choice: str | None) -> None:
    if chapter.state != ChapterState.COMPLETE:
        raise GameError(409, "This chapter is still being written; choose when its choices appear.")
    if not choice or choice not in chapter.choices:
        raise GameError(400, "That choice is not one of this chapter's choices. Please pick one of the buttons.")
    if chapter.number == CHAPTER_COUNT:
        raise GameError(409, "This was the last chapter: there is nothing more to choose.")


def _check_in_plan(number: int) -> None:
    # Checked before any read: a number past the plan is no chapter, and one past the
    # database's integers must not reach it.
    if not 1 <= number <= CHAPTER_COUNT:
        raise GameError(404, f"There is no chapter {number}: an adventure has chapters 1 to {CHAPTER_COUNT}, "
                             "so that chapter does not exist.")


def _reached(chapter: Chapter | None, number: int) -> Chapter:
    if chapter is None:
        _not_reached(number)
    return chapter


def _not_reached(number: int) -> NoReturn:
    raise GameError(404, f"Chapter {number} of this adventure has not been reached yet.")


class Turns:
    """Moves on one adventure take turns: a double click's second choice waits until the first
    is stored, then finds it there and follows its chapter instead of starting another."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def of(self, adventure_id: str):
        lock = self._locks.setdefault(adventure_id, asyncio.Lock())
        self._holders[adventure_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._holders[adventure_id] -= 1
            if not self._holders[adventure_id]:
                del self._holders[adventure_id], self._locks[adventure_id]
