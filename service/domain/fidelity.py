"""Lesson fidelity after the stream: a LESSON chapter's bank question is shown word for word
exactly once, as the legend over its answers, and a REFLECT chapter gives the explanation
in substance. Additions only ever follow the streamed text; nothing the player saw is rewritten.
"""
from __future__ import annotations

from dataclasses import dataclass

import regex

from service.domain.story import ChapterType, LessonQuestion

_WORD = regex.compile(r"[\p{L}\p{N}]+")
# Words too common to show that an explanation was given.
_COMMON = frozenset(
    "the a an and or of to in on at by for with from as is are was were be been it its this that these those "
    "which who what when where why how than then so because into about over under more most some many can "
    "has have had do does did not no yes they them their there here you your we our he she his her".split()
)
# Share of the explanation's key words a REFLECT chapter must use to count as explaining it.
EXPLANATION_COVERAGE = 0.5


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def asks_verbatim(text: str, question: str) -> bool:
    """The question appears word for word (spacing and letter case aside)."""
    return _normal(question) in _normal(text)


def key_words(text: str) -> set[str]:
    return {w for w in (m.casefold() for m in _WORD.findall(text)) if w not in _COMMON and len(w) > 2}


def explains(text: str, explanation: str) -> bool:
    wanted = key_words(explanation)
    if not wanted:
        return True
    return len(wanted & key_words(text)) / len(wanted) >= EXPLANATION_COVERAGE


@dataclass(frozen=True)
class Legend:
    """What the answer buttons' group is called. A screen reader meets the question there,
    with its answers; when the story already asks it word for word, sighted readers have
    just read it, so the legend is not shown a second time (`shown` False: for screen
    readers only)."""

    text: str
    shown: bool = True


def lesson_legend(kind: ChapterType, question: LessonQuestion | None, text: str) -> Legend | None:
    """The legend of a LESSON chapter's answers: its bank question, shown unless `text` asks it."""
    if kind is not ChapterType.LESSON or question is None:
        return None
    return Legend(question.question, shown=not asks_verbatim(text, question.question))


def lesson_additions(kind: ChapterType, question: LessonQuestion | None, text: str) -> list[str]:
    """Paragraphs to append to the finished chapter (empty when it already does its job).
    A LESSON chapter gets none: its question is the legend of its answers (lesson_legend)."""
    if question is None:
        return []
    if kind is ChapterType.REFLECT and not explains(text, question.explanation):
        return [f"Thinking back: {question.question} The answer is {question.correct_answer}. "
                f"{question.explanation}"]
    return []
