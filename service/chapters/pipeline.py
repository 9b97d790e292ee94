"""One chapter, top to bottom: tokens in, visible text out as it comes, then the finished
chapter (paragraphs and choices). Nothing here waits for the whole reply before the
first piece of text is handed on, and nothing already shown is ever written again.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from service.chapters.drafting import drafted
from service.chapters.screening import ChildSafety, lesson_answers, off_the_loop
from service.domain.agency import gifts_offered
from service.domain.choices import (
    choices_in_sentence,
    merged_choices,
    parse_choice_reply,
    sensible_choices,
    split_choices,
)
from service.domain.fallback_choices import fallback_choices
from service.domain.fidelity import Legend, lesson_check, lesson_legend
from service.domain.formatting import PARAGRAPH_BREAK
from service.domain.lessons import shuffled_answers
from service.domain.paragraphs import to_paragraphs
from service.domain.screen_rules import Hit
from service.domain.story import ChapterType
from service.domain.stream_text import VisibleText
from service.llm.client import ModelClient, StreamStats
from service.llm.formats import CHOICES, CHOICES_LEAD
from service.llm.prompts import (
    ChapterBrief,
    chapter_messages,
    choices_continuation_messages,
    choices_repair_messages,
)

log = logging.getLogger(__name__)
# Three choices of up to twelve words, their labels and the block's end.
CHOICES_TOKENS = 90
# Tries of the embedded model at the choices, whose usable lines are combined.
LOCAL_CHOICE_TRIES = 3
# The embedded model's chapter stops at a sentence told twice (others' at the third time).
LOCAL_SENTENCE_REPEATS = 2


@dataclass(frozen=True)
class Chunk:
    text: str


@dataclass(frozen=True)
class StoryWritten:
    """The story's text is complete (what is left to stream is the choices block, if any):
    work that needs only the text, such as the chapter's picture, may begin."""
    text: str


@dataclass
class FinishedChapter:
    paragraphs: list[str]
    # Paragraphs added after the model's story (a sentence when no story came); they
    # streamed as a chunk of their own once the story was over.
    added: list[str]
    choices: list[str]
    quality: dict = field(default_factory=dict)
    first_token_seconds: float | None = None
    # What the choices answer: a LESSON chapter's buttons answer its bank question.
    legend: Legend | None = None
    # What the child-safety screen took out of the model's text.
    screened: list[Hit] = field(default_factory=list)

    @property
    def text(self) -> str:
        return PARAGRAPH_BREAK.join(self.paragraphs)


@dataclass(frozen=True)
class KeptStory:
    """The model's story as the chapter keeps it, once the story is over (built once per
    chapter), and what the chapter adds after it: a sentence when no story came, and in the
    first chapter the gifts on offer when the story did not name them."""

    text: str
    paragraphs: list[str]
    added: list[str]

    @classmethod
    def of(cls, brief: ChapterBrief, visible: VisibleText) -> KeptStory:
        text = visible.text
        paragraphs = to_paragraphs(text)
        added = [] if paragraphs else [
            f"You pause for a moment in {brief.world.settings[0]}, listening and looking around."]
        if brief.agency_options and (offer := gifts_offered(brief.agency_options, text)):
            added.append(offer)  # the first chapter's buttons are the gifts its page offers
        return cls(text, paragraphs, added)

    def chunk(self, shown: str) -> Chunk | None:
        """What the chapter adds, as streamed text: new paragraphs after what was shown."""
        if not self.added:
            return None
        return Chunk((PARAGRAPH_BREAK if shown else "") + PARAGRAPH_BREAK.join(self.added))


async def write_chapter(brief: ChapterBrief, model: ModelClient, safety: ChildSafety, rng: random.Random,
                        repair_timeout: float = 30.0, max_chars: int = 4000,
                        loop_preview_words: int = 4, stats: StreamStats | None = None,
                        screened: bool = True) -> AsyncIterator[Chunk | StoryWritten | FinishedChapter]:
    stats = stats or StreamStats()
    brief = replace(brief, compact=model.local_chapters)  # the prompt suits the model that writes
    # A small model that tells a sentence a second time has begun to loop (see RepetitionGuard).
    repeats = LOCAL_SENTENCE_REPEATS if model.local_chapters else 3
    visible = VisibleText(max_chars, loop_preview_words, safety.chapter_rules(brief), screened, repeats)
    opening = _opening(brief)
    if opening:
        yield Chunk(opening + PARAGRAPH_BREAK)
    story: KeptStory | None = None
    async for text in drafted(brief, model, visible, stats):
        if text:
            yield Chunk(text)
        if story is None and visible.story_over and visible.shown.strip():
            # The choices block has begun: what the chapter adds streams now, not once the
            # whole block has come. (A reply that showed nothing may still be asked again.)
            story = KeptStory.of(brief, visible)
            yield StoryWritten(story.text)
            if chunk := story.chunk(visible.shown):
                yield chunk
    if text := visible.finish():
        yield Chunk(text)
    if story is None:
        story = KeptStory.of(brief, visible)
        yield StoryWritten(story.text)
        if chunk := story.chunk(visible.shown):
            yield chunk
    yield await finish_chapter(brief, visible, story, model, safety, rng, stats, repair_timeout, opening)


def _opening(brief: ChapterBrief) -> str | None:
    """The lesson bank's feedback on the answer the reader just gave, if they gave one."""
    if brief.previous_correct is None or brief.previous_question is None or brief.previous_choice is None:
        return None
    return lesson_check(brief.previous_question, brief.previous_choice, brief.previous_correct)


async def finish_chapter(brief: ChapterBrief, visible: VisibleText, story: KeptStory, model: ModelClient,
                         safety: ChildSafety, rng: random.Random, stats: StreamStats, repair_timeout: float,
                         opening: str | None = None) -> FinishedChapter:
    quality = {"model": stats.model, "tokens": stats.tokens, "paragraphs": len(story.paragraphs) + len(story.added),
               "stream_seconds": stats.stream_seconds, "first_text_seconds": stats.first_text_seconds,
               "stopped": visible.guard.reason or ("unfit" if visible.screen.stopped else None),
               "screened": visible.screened()}
    choices, quality["choices"], quality["choices_format"] = await _choices(
        brief, visible.raw, story.text, model, safety, rng, repair_timeout)
    legend = lesson_legend(brief.type, brief.question, story.text)
    paragraphs = ([opening] if opening else []) + story.paragraphs + story.added
    return FinishedChapter(paragraphs, story.added, choices, quality, stats.first_token_seconds, legend,
                           visible.screen.hits)


async def _choices(brief: ChapterBrief, raw: str, text: str, model: ModelClient, safety: ChildSafety,
                   rng: random.Random, repair_timeout: float) -> tuple[list[str], str, str | None]:
    """(the buttons, where they came from, whether the model's first choices were well-formed)."""
    if brief.type is ChapterType.CONCLUSION:
        return [], "none", None
    if brief.type is ChapterType.LESSON and brief.question:
        return shuffled_answers(brief.question, rng), "bank", None
    if brief.agency_options:
        return list(brief.agency_options), "agency", None
    answers = lesson_answers(brief)
    small = model.local_chapters
    story, first = split_choices(raw)
    if small:  # the embedded model writes them after its story, held to a grammar
        first = await _continued_choices(brief, story, model, repair_timeout)
    well_formed = "valid" if first and len(first) >= 3 else "invalid"
    # A millisecond or more of pure Python, taken off the loop that streams other chapters.
    if choices := await off_the_loop(_usable, first, text, small, safety, answers):
        return choices, "model", well_formed
    log.info("chapter %s: the model's choices were not all usable: %r", brief.number, first)
    if small:
        # Each try costs a second or two: the lines of several are combined, place by place.
        tries = [first]
        for _ in range(LOCAL_CHOICE_TRIES - 1):
            tries.append(await _continued_choices(brief, story, model, repair_timeout, retry=True))
            log.info("chapter %s: choices tried again: %r", brief.number, tries[-1])
            fit = [[c if safety.fit(c, answers) else "" for c in choices] for choices in tries]
            if choices := merged_choices(fit, text, small):
                return choices, "repaired", well_formed
    elif choices := await off_the_loop(_usable, await _repair_choices(text, model, repair_timeout) or [], text,
                                       small, safety, answers):
        return choices, "repaired", well_formed
    log.info("chapter %s: no usable choices from the model, using the fallback", brief.number)
    return fallback_choices(text, brief.world, rng, avoid=[*answers, brief.topic_name]), "fallback", well_formed


def _usable(choices: list[str], text: str, small: bool, safety: ChildSafety, answers: list[str]) -> list[str] | None:
    return _fit(sensible_choices(choices, text, small), safety, answers)


def _fit(choices: list[str] | None, safety: ChildSafety, answers: list[str]) -> list[str] | None:
    """The choices, unless one of them is unfit for a child, talks about the task or names
    an answer to the lesson's question."""
    if choices and all(safety.fit(choice, answers) for choice in choices):
        return choices
    return None


async def _continued_choices(brief: ChapterBrief, story: str, model: ModelClient, timeout: float,
                             retry: bool = False) -> list[str]:
    """The model's own reply, continued into a sentence of three choices: it still holds the
    chapter in its context, so this costs a few dozen tokens, and the grammar makes the
    sentence well-formed."""
    messages = choices_continuation_messages(chapter_messages(brief), story, CHOICES_LEAD)
    try:
        async with asyncio.timeout(timeout):
            reply = await model.complete(messages, max_tokens=CHOICES_TOKENS, shape=CHOICES, continue_reply=True,
                                         chapter_model=True, retry=retry)
    except Exception as exc:  # best effort: a second try, then the fallback
        log.warning("choices after the chapter failed: %r", exc)
        return []
    return choices_in_sentence(reply)


async def _repair_choices(chapter_text: str, model: ModelClient, timeout: float) -> list[str] | None:
    """One short call that asks only for the three choices, given the chapter."""
    try:
        async with asyncio.timeout(timeout):
            reply = await model.complete(choices_repair_messages(chapter_text), max_tokens=120, shape=CHOICES)
    except Exception as exc:  # the repair is best effort: the fallback always works
        log.warning("choices repair failed: %r", exc)
        return None
    return parse_choice_reply(reply)
