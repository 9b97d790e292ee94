"""One chapter, top to bottom: tokens in, visible text out as it comes, then the finished
chapter (paragraphs and choices). Nothing here waits for the whole reply before the
first piece of text is handed on, and nothing already shown is ever written again.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

from service.domain.choices import fallback_choices, sensible_choices, split_choices
from service.domain.fidelity import lesson_additions
from service.domain.formatting import PARAGRAPH_BREAK
from service.domain.lessons import shuffled_answers
from service.domain.paragraphs import to_paragraphs
from service.domain.story import ChapterType
from service.domain.stream_text import VisibleText
from service.llm.client import ModelClient, StreamStats
from service.llm.prompts import ChapterBrief, chapter_messages, choices_repair_messages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    text: str


@dataclass
class FinishedChapter:
    paragraphs: list[str]
    # Paragraphs added after the model's story (e.g. the exact lesson question); they
    # streamed as a chunk of their own once the story was over.
    added: list[str]
    choices: list[str]
    quality: dict = field(default_factory=dict)
    first_token_seconds: float | None = None
    # What the choices answer: a LESSON chapter's buttons answer its bank question.
    legend: str | None = None

    @property
    def text(self) -> str:
        return PARAGRAPH_BREAK.join(self.paragraphs)


@dataclass(frozen=True)
class KeptStory:
    """The model's story as the chapter keeps it, once the story is over (built once per
    chapter), and what the chapter adds after it: a sentence when no story came, and what
    lesson fidelity asks for (`lesson_added`: whether it asked for anything)."""

    text: str
    paragraphs: list[str]
    added: list[str]
    lesson_added: bool

    @classmethod
    def of(cls, brief: ChapterBrief, visible: VisibleText) -> KeptStory:
        text = visible.text
        paragraphs = to_paragraphs(text)
        added = [] if paragraphs else [
            f"You pause for a moment in {brief.world.settings[0]}, listening and looking around."]
        lesson_added = lesson_additions(brief.type, brief.question, text)
        return cls(text, paragraphs, added + lesson_added, bool(lesson_added))

    def chunk(self, shown: str) -> Chunk | None:
        """What the chapter adds, as streamed text: new paragraphs after what was shown."""
        if not self.added:
            return None
        return Chunk((PARAGRAPH_BREAK if shown else "") + PARAGRAPH_BREAK.join(self.added))


async def write_chapter(brief: ChapterBrief, model: ModelClient, rng: random.Random,
                        repair_timeout: float = 30.0, max_chars: int = 4000,
                        loop_preview_words: int = 4, stats: StreamStats | None = None
                        ) -> AsyncIterator[Chunk | FinishedChapter]:
    stats = stats or StreamStats()
    visible = VisibleText(max_chars, loop_preview_words)
    story: KeptStory | None = None
    async with aclosing(model.stream(chapter_messages(brief), stats)) as tokens:
        async for token in tokens:
            if text := visible.feed(token):
                yield Chunk(text)
            if visible.stopped:
                break  # a loop or the length cap: the rest of the reply is never shown
            if story is None and visible.story_over:
                # The choices block has begun: what the chapter adds streams now, not once
                # the whole block has come.
                story = KeptStory.of(brief, visible)
                if chunk := story.chunk(visible.shown):
                    yield chunk
    if text := visible.finish():
        yield Chunk(text)
    if story is None:
        story = KeptStory.of(brief, visible)
        if chunk := story.chunk(visible.shown):
            yield chunk
    yield await finish_chapter(brief, visible, story, model, rng, stats, repair_timeout)


async def finish_chapter(brief: ChapterBrief, visible: VisibleText, story: KeptStory, model: ModelClient,
                         rng: random.Random, stats: StreamStats, repair_timeout: float) -> FinishedChapter:
    quality = {"model": stats.model, "tokens": stats.tokens, "paragraphs": len(story.paragraphs) + len(story.added),
               "lesson_added": story.lesson_added, "stream_seconds": stats.stream_seconds,
               "stopped": visible.guard.reason}
    choices, quality["choices"] = await _choices(brief, visible.raw, story.text, model, rng, repair_timeout)
    legend = brief.question.question if brief.type is ChapterType.LESSON and brief.question else None
    return FinishedChapter(story.paragraphs + story.added, story.added, choices, quality,
                           stats.first_token_seconds, legend)


async def _choices(brief: ChapterBrief, raw: str, text: str, model: ModelClient, rng: random.Random,
                   repair_timeout: float) -> tuple[list[str], str]:
    if brief.type is ChapterType.CONCLUSION:
        return [], "none"
    if brief.type is ChapterType.LESSON and brief.question:
        return shuffled_answers(brief.question, rng), "bank"
    if brief.agency_options:
        return list(brief.agency_options), "agency"
    if choices := sensible_choices(split_choices(raw)[1], text):
        return choices, "model"
    if choices := await _repair_choices(text, model, repair_timeout):
        return choices, "repaired"
    return fallback_choices(text, brief.world, rng), "fallback"


async def _repair_choices(chapter_text: str, model: ModelClient, timeout: float) -> list[str] | None:
    """One short call that asks only for the three choices, given the chapter."""
    try:
        async with asyncio.timeout(timeout):
            reply = await model.complete(choices_repair_messages(chapter_text), max_tokens=120)
    except Exception as exc:  # the repair is best effort: the fallback always works
        log.warning("choices repair failed: %r", exc)
        return None
    return sensible_choices(split_choices(reply)[1], chapter_text)
