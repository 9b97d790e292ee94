"""The data the game is made of: story worlds, lesson questions, chapter types and phases.

Plain frozen dataclasses, so every other layer can pass them around without copying.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ChapterType(StrEnum):
    STORY = "STORY"
    LESSON = "LESSON"
    REFLECT = "REFLECT"
    CONCLUSION = "CONCLUSION"


class StoryPhase(StrEnum):
    EXPOSITION = "Exposition"
    RISING = "Rising Action"
    TRIALS = "Trials"
    CLIMAX = "Climax"
    RETURN = "Return"


CHAPTER_COUNT = 10


@dataclass(frozen=True)
class StoryWorld:
    key: str
    name: str
    description: str
    settings: tuple[str, ...]
    themes: tuple[str, ...]
    moral_teachings: tuple[str, ...]
    plot_twists: tuple[str, ...]
    visuals: tuple[str, ...]
    sounds: tuple[str, ...]
    smells: tuple[str, ...]


@dataclass(frozen=True)
class LessonQuestion:
    id: str
    topic: str
    subtopic: str
    difficulty: str
    question: str
    correct_answer: str
    wrong_answers: tuple[str, str]
    explanation: str

    @property
    def answers(self) -> tuple[str, str, str]:
        return (self.correct_answer, *self.wrong_answers)


@dataclass(frozen=True)
class LessonTopic:
    key: str
    name: str
    questions: tuple[LessonQuestion, ...]


@dataclass(frozen=True)
class Catalog:
    worlds: dict[str, StoryWorld]
    topics: dict[str, LessonTopic]


@dataclass(frozen=True)
class AgencyOption:
    category: str  # "companion", "artifact", "profession", "ability"
    name: str
    description: str

    @property
    def label(self) -> str:
        return f"{self.name}: {self.description}"
