"""Lessons are judged by the bank, never by the model: the feedback on an answer (right or
not, the right answer, why) is the service's own paragraph that opens the next chapter, and a
LESSON chapter whose model did not ask the bank's question word for word gets it added after
the stream. Nothing the player saw is rewritten.
"""
from __future__ import annotations

from service.domain.instructions import Label
from service.domain.story import ChapterType, LessonQuestion


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def asks_verbatim(text: str, question: str) -> bool:
    """The question appears word for word (spacing and letter case aside)."""
    return _normal(question) in _normal(text)


def lesson_additions(kind: ChapterType, question: LessonQuestion | None, text: str) -> list[str]:
    """Paragraphs to append to the finished chapter (empty when it already does its job)."""
    if kind is ChapterType.LESSON and question is not None and not asks_verbatim(text, question.question):
        return [question.question]
    return []


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
