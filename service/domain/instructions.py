"""The labels that begin the lines of a model's instructions ("CHAPTER TYPE: STORY"). The
prompt builders write them and the screen keeps any line or sentence that repeats one off
the page: one list, so the two never drift apart.
"""
from __future__ import annotations

from enum import StrEnum


class Label(StrEnum):
    WORLD = "WORLD"
    PLACES = "Places"
    THEMES = "Themes"
    HEART = "Lessons of the heart"
    SIGHTS = "Sights"
    SOUNDS = "Sounds"
    SMELLS = "Smells"
    NEVER = "Never write"
    EXAMPLE = "Example of the style"
    TOPIC = "LESSON TOPIC"
    PICK = "THE HERO'S SPECIAL PICK"
    CHARACTERS = "CHARACTERS"
    KNOWN_CHARACTERS = "KNOWN CHARACTERS"
    STORY_SO_FAR = "STORY SO FAR"
    LAST_CHAPTER = "THE LAST CHAPTER"
    CHAPTER = "CHAPTER"
    CHAPTER_TYPE = "CHAPTER TYPE"
    PHASE = "STORY PHASE"
    TWIST = "PLOT TWIST"
    READER_CHOSE = "THE READER CHOSE"
    READER_ANSWERED = "THE READER ANSWERED"
    QUESTION = "LESSON QUESTION"
    REFLECT = "REFLECT ON"
    TASK = "TASK"
    # The service's own lesson feedback paragraph begins so; a model may never write it.
    LESSON_CHECK = "Lesson check"


PROMPT_LABELS: tuple[str, ...] = tuple(label.value for label in Label)
