"""Lessons are judged by the bank, never by the model. A LESSON chapter's question is shown
word for word exactly once, as the legend over its answers; the feedback on an answer (right
or not, the right answer, why) is the service's own paragraph that opens the next chapter.
Nothing the player saw is rewritten.
"""
from __future__ import annotations

from dataclasses import dataclass

from service.domain.instructions import Label
from service.domain.story import ChapterType, LessonQuestion


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def asks_verbatim(text: str, question: str) -> bool:
    """The question appears word for word (spacing and letter case aside)."""
    return _normal(question) in _normal(text)


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


def lesson_check(question: LessonQuestion, answer: str, correct: bool) -> str:
    """The feedback paragraph on the reader's answer, from the bank alone."""
    if correct:
        said = f"You answered “{answer}”, and that is right!"
    else:
        said = f"You answered “{answer}”. The right answer is “{question.correct_answer}”."
    return f"{Label.LESSON_CHECK}: {question.question} {said} {question.explanation}"


def is_lesson_check(paragraph: str) -> bool:
    return paragraph.startswith(f"{Label.LESSON_CHECK}: ")


def story_text(text: str) -> str:
    """A chapter's text without the lesson bank's feedback: what a model summarises or
    continues from, so that it never repeats a verdict."""
    return "\n\n".join(p for p in text.split("\n\n") if p and not is_lesson_check(p))
