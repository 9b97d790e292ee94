"""Builds a chapter's brief from what the store knows: the world, the plan, the lessons,
the earlier chapters (their summaries once written, the last one in full) and the answers.
"""
from __future__ import annotations

import random

from service.domain.agency import offer_agency
from service.domain.fidelity import story_text
from service.domain.plan import plot_twist
from service.domain.story import Catalog, ChapterType, LessonQuestion
from service.llm.prompts import ChapterBrief
from service.store.adventures import StorySoFar
from service.store.models import Adventure

# Of the characters a prompt gives to earlier chapters, the last chapter gets this share.
_LAST_CHAPTER_SHARE = 0.55


def question_for(catalog: Catalog, adventure: Adventure, number: int) -> LessonQuestion | None:
    """The bank question of a LESSON chapter, or the one a REFLECT chapter revisits."""
    plan = [ChapterType(t) for t in adventure.plan]
    kind = plan[number - 1]
    if kind is ChapterType.REFLECT:
        number -= 1
    elif kind is not ChapterType.LESSON:
        return None
    index = sum(1 for t in plan[: number - 1] if t is ChapterType.LESSON)
    questions = {q.id: q for q in catalog.topics[adventure.topic_key].questions}
    return questions.get(adventure.question_ids[index])


def agency_labels(adventure: Adventure) -> tuple[str, ...]:
    return tuple(option.label for option in offer_agency(random.Random(adventure.seed)))


def build_brief(catalog: Catalog, story: StorySoFar, number: int, context_chars: int = 3300) -> ChapterBrief:
    adventure, previous, last, summaries = story.adventure, story.last_answer, story.last_chapter, story.summaries
    earlier = [f"Chapter {n}: {summaries[n].summary}" for n in range(1, number - 1) if n in summaries]
    world = catalog.worlds[adventure.world_key]
    return ChapterBrief(
        world=world,
        topic_name=catalog.topics[adventure.topic_key].name,
        number=number,
        type=ChapterType(adventure.plan[number - 1]),
        agency=adventure.agency,
        agency_options=agency_labels(adventure) if number == 1 else (),
        question=question_for(catalog, adventure, number),
        previous_choice=previous.choice if previous else None,
        previous_correct=previous.correct if previous else None,
        previous_question=question_for(catalog, adventure, number - 1) if number > 1 else None,
        story_so_far=tuple(_last_chars(earlier, int(context_chars * (1 - _LAST_CHAPTER_SHARE)))),
        last_chapter=story_text(last.text)[-int(context_chars * _LAST_CHAPTER_SHARE):] if last else None,
        characters=tuple((c.name, c.description) for c in story.characters),
        twist=plot_twist(world, adventure.seed, number),
    )


def _last_chars(lines: list[str], budget: int) -> list[str]:
    kept: list[str] = []
    for line in reversed(lines):
        budget -= len(line)
        if budget < 0:
            break
        kept.insert(0, line)
    return kept

