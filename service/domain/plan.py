"""The shape of a ten-chapter story: which chapters are lessons, reflections or story.

Also owns the narrative phase of each chapter number, the per-phase writing guidance and
the chapter where the world's plot twist comes out.
"""
from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from service.domain.story import CHAPTER_COUNT, ChapterType, StoryPhase, StoryWorld

# The LESSON -> REFLECT -> STORY block must lie inside chapters 2..7, so it may start at 2..5.
BLOCK_STARTS = (2, 3, 4, 5)
BLOCK_LAST_CHAPTER = 7
# The two extra lessons may go anywhere in 2..8 outside the block (chapter 9 sets up the climax).
EXTRA_LESSON_CHAPTERS = range(2, 9)
LESSON_COUNT = 3

PHASE_GUIDANCE: dict[StoryPhase, str] = {
    StoryPhase.EXPOSITION: (
        "Introduce the hero, the world and its senses, and hint at the problem that will drive the story."
    ),
    StoryPhase.RISING: (
        "Complicate the situation: new allies, obstacles and questions should raise the stakes step by step."
    ),
    StoryPhase.TRIALS: (
        "Test the hero with hard challenges that demand courage, cleverness and the lessons learned so far."
    ),
    StoryPhase.CLIMAX: (
        "Bring the central conflict to its peak, with the hero's earlier choices deciding how it unfolds."
    ),
    StoryPhase.RETURN: (
        "Resolve the adventure, show how the hero has changed and close every open thread warmly."
    ),
}


# The chapter where the world's plot twist comes out: the middle of the trials, so that the
# climax can turn on it and the return can close it.
TWIST_CHAPTER = 6


def plot_twist(world: StoryWorld, seed: int, chapter_number: int) -> str | None:
    """The adventure's plot twist (one of the world's, chosen by its seed) in the chapter that
    reveals it; None in every other chapter. Later chapters learn it from the story so far."""
    if chapter_number != TWIST_CHAPTER or not world.plot_twists:
        return None
    return random.Random(f"{seed}:twist").choice(world.plot_twists)


def phase_for(chapter_number: int) -> StoryPhase:
    if not 1 <= chapter_number <= CHAPTER_COUNT:
        raise ValueError(f"chapter number must be 1..{CHAPTER_COUNT}, got {chapter_number}")
    if chapter_number == 1:
        return StoryPhase.EXPOSITION
    if chapter_number <= 3:
        return StoryPhase.RISING
    if chapter_number <= 7:
        return StoryPhase.TRIALS
    if chapter_number <= 9:
        return StoryPhase.CLIMAX
    return StoryPhase.RETURN


def _extra_lesson_pairs(block_start: int) -> list[tuple[int, int]]:
    """Every allowed pair of extra lesson chapters for a block starting at block_start."""
    blocked = {block_start - 1, block_start, block_start + 1, block_start + 2}
    free = [c for c in EXTRA_LESSON_CHAPTERS if c not in blocked]
    return [(a, b) for i, a in enumerate(free) for b in free[i + 1:] if b - a > 1]


def make_plan(rng: random.Random) -> tuple[ChapterType, ...]:
    block_start = rng.choice(BLOCK_STARTS)
    extra = rng.choice(_extra_lesson_pairs(block_start))
    plan = [ChapterType.STORY] * CHAPTER_COUNT
    plan[CHAPTER_COUNT - 1] = ChapterType.CONCLUSION
    plan[block_start - 1] = ChapterType.LESSON
    plan[block_start] = ChapterType.REFLECT
    for chapter in extra:
        plan[chapter - 1] = ChapterType.LESSON
    return tuple(plan)


def _fixed_chapter_violations(plan: Sequence[ChapterType]) -> list[str]:
    problems = []
    expected = {1: ChapterType.STORY, 9: ChapterType.STORY, CHAPTER_COUNT: ChapterType.CONCLUSION}
    for chapter, kind in expected.items():
        if plan[chapter - 1] != kind:
            problems.append(f"chapter {chapter} must be {kind}, got {plan[chapter - 1]}")
    for chapter, kind in enumerate(plan[:-1], start=1):
        if kind == ChapterType.CONCLUSION:
            problems.append(f"chapter {chapter} is a CONCLUSION but only chapter {CHAPTER_COUNT} may be")
    return problems


def _lesson_violations(plan: Sequence[ChapterType]) -> list[str]:
    problems = []
    lessons = [c for c, kind in enumerate(plan, start=1) if kind == ChapterType.LESSON]
    if len(lessons) != LESSON_COUNT:
        problems.append(f"expected {LESSON_COUNT} LESSON chapters, got {len(lessons)}")
    for a, b in itertools.pairwise(lessons):
        if b == a + 1:
            problems.append(f"chapters {a} and {b} are two LESSONs in a row")
    return problems


def _reflect_violations(plan: Sequence[ChapterType]) -> list[str]:
    problems = []
    reflects = [c for c, kind in enumerate(plan, start=1) if kind == ChapterType.REFLECT]
    if len(reflects) != 1:
        problems.append(f"expected exactly 1 REFLECT chapter, got {len(reflects)}")
    for chapter in reflects:
        if chapter == 1 or plan[chapter - 2] != ChapterType.LESSON:
            problems.append(f"REFLECT chapter {chapter} must directly follow a LESSON")
        if chapter == len(plan) or plan[chapter] != ChapterType.STORY:
            problems.append(f"REFLECT chapter {chapter} must be directly followed by a STORY")
        if not (BLOCK_STARTS[0] + 1 <= chapter <= BLOCK_LAST_CHAPTER - 1):
            problems.append(
                f"the LESSON-REFLECT-STORY block around chapter {chapter} "
                f"must lie within chapters {BLOCK_STARTS[0]}-{BLOCK_LAST_CHAPTER}"
            )
    return problems


def validate_plan(plan: Sequence[ChapterType]) -> list[str]:
    """Human-readable rule violations; an empty list means the plan is valid."""
    if len(plan) != CHAPTER_COUNT:
        return [f"a plan must have {CHAPTER_COUNT} chapters, got {len(plan)}"]
    unknown = [kind for kind in plan if kind not in set(ChapterType)]
    if unknown:
        return [f"unknown chapter types: {', '.join(map(str, unknown))}"]
    return _fixed_chapter_violations(plan) + _lesson_violations(plan) + _reflect_violations(plan)
