"""What each text a model writes is screened against (domain/screen_rules.py): the listed terms
for every text; for a chapter also its prompt's directives and labels and, in a lesson's
chapters, the question's answers, which only the lesson bank may state.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from glin_profanity import Filter

from service.domain.instructions import PROMPT_LABELS
from service.domain.paragraphs import split_sentences, to_paragraphs
from service.domain.screen import screen_text
from service.domain.screen_rules import ANSWER, Hit, Lexicon, ScreenRules, words_of
from service.domain.story import ChapterType, LessonQuestion
from service.llm.prompts import ChapterBrief, chapter_directives

log = logging.getLogger(__name__)
T = TypeVar("T")
# Whole texts (summaries, descriptions, a picture's prompt, a chapter's choices) are screened
# on one thread of their own: milliseconds of pure Python each, they stalled every stream
# when run on the event loop, and many threads at once would starve the loop of the
# interpreter's lock instead.
_SCREENING = ThreadPoolExecutor(1, thread_name_prefix="screen")


async def off_the_loop(work: Callable[..., T], *args) -> T:
    """`work(*args)` on the screening thread."""
    return await asyncio.get_running_loop().run_in_executor(_SCREENING, functools.partial(work, *args))


class ChildSafety:
    """The screen's rules for a chapter, and the whole-text screen for everything else a
    model writes (choices, summaries, titles, character descriptions)."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        # A second look at whole texts, which cost little to check twice: the general
        # filter also sees disguised words ("f.u.c.k", letters from other alphabets).
        self._general = Filter({"languages": ["english"], "ignore_words": lexicon.allow})

    def chapter_rules(self, brief: ChapterBrief) -> ScreenRules:
        lexicons = [self.lexicon]
        if answers := lesson_answers(brief):
            lexicons.append(Lexicon({ANSWER: answers}))
        return ScreenRules(lexicons, chapter_directives(brief), PROMPT_LABELS)

    def clean(self, text: str, answers: Sequence[str] = (), general: bool = True) -> tuple[str, list[Hit]]:
        """The text without the sentences unfit for a child or echoing instructions (or
        naming one of a lesson question's `answers`). `general`: the general filter's second
        look too, which a text made only of parts that each had it may skip."""
        lexicons = [self.lexicon, Lexicon({ANSWER: answers})] if answers else [self.lexicon]
        kept, hits = screen_text(text, ScreenRules(lexicons, labels=PROMPT_LABELS))
        if not general:
            return kept, hits
        paragraphs = []
        for paragraph in to_paragraphs(kept):
            sentences = split_sentences(paragraph)
            fit = [s for s in sentences if not self._general.is_profane(s)]
            hits.extend(Hit("profanity", "disguised") for _ in range(len(sentences) - len(fit)))
            if fit:
                paragraphs.append(" ".join(fit))
        return "\n\n".join(paragraphs), hits

    def fit(self, text: str, answers: Sequence[str] = ()) -> bool:
        """Whether a short text (a choice, a name) passes whole."""
        kept, hits = self.clean(text, answers)
        return not hits and bool(kept.strip())


def lesson_answers(brief: ChapterBrief) -> list[str]:
    """The answers a model sentence may not name in this chapter: the question's own in a
    LESSON or REFLECT chapter, and the one just answered in the chapter after an answer.
    Words of the question itself stay sayable, so the question can be asked."""
    questions = []
    if brief.type in (ChapterType.LESSON, ChapterType.REFLECT) and brief.question:
        questions.append(brief.question)
    if brief.previous_correct is not None and brief.previous_question:
        questions.append(brief.previous_question)
    return [answer for question in questions for answer in unsayable_answers(question)]


def unsayable_answers(question: LessonQuestion) -> list[str]:
    """The question's answers, but for those the question itself says, word for word as the
    screen reads words ("2.5" in "What is 2/5 written as a decimal?": the words 2 and 5)."""
    asked = words_of(question.question)
    return [a for a in question.answers if not _within(words_of(a), asked)]


def _within(words: tuple[str, ...], text: tuple[str, ...]) -> bool:
    return any(text[i:i + len(words)] == words for i in range(len(text) - len(words) + 1))


def log_hits(hits: Sequence[Hit], where: str, adventure_id: str, number: int) -> None:
    """One log line per sentence the screen dropped from a text other than a chapter's."""
    for hit in hits:
        log.info("%s of %s/%s: a sentence was dropped (%s: %s)", where, adventure_id, number, hit.category, hit.term)
