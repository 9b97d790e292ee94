"""The chapter prompt of a small embedded model: short, because a CPU reads every prompt token
before the first word (about 200 a second for SmolLM2-135M on one core), and plain, because a
135M model follows a few concrete words far better than a list of rules.

Its system part is the same for every chapter of every adventure, so the model keeps it read
(llm/local_engine.py); what stays the same within an adventure comes next; what changes goes
last and is kept to a few lines. The lines begin with the labels of domain/instructions.py,
and `chapter_directives` lists what it asks, as the screen needs.
"""
from __future__ import annotations

import regex

from service.domain.instructions import Label
from service.domain.story import ChapterType
from service.llm.prompts import ANSWERED, GO_ON, ChapterBrief

STORYTELLER = (
    "You are a storyteller for children aged 8 to 12. Write in the second person (\"you\") and the "
    "present tense, with short sentences and simple words. Write plain story text in short paragraphs, "
    "with no titles and no lists. Keep it gentle, kind and full of wonder."
)
# Shown, not told: a small model copies the rhythm of an example better than it follows a rule.
STYLE_EXAMPLE = (
    "You step onto the old rope bridge. It sways under your feet, and the river sparkles far below. "
    "\"Hold on tight!\" calls a small voice beside you. You grip the rope and take one brave step, then another."
)
WORDS = 150
_LAST_CHAPTER_CHARS = 320
_SUMMARY_CHARS = 240
_CHARACTERS = 2
_CHARACTER_CHARS = 80
_SENTENCE_END = regex.compile(r"(?<=[.!?][\"”’']?)\s+")


def system_prompt() -> str:
    return f"{STORYTELLER}\n{Label.EXAMPLE}: {STYLE_EXAMPLE}"


def chapter_messages(brief: ChapterBrief) -> list[dict]:
    world = brief.world
    lines = [f"{Label.WORLD}: {world.name}. {_first_sentence(world.description)}",
             f"{Label.TOPIC}: {brief.topic_name}"]
    if brief.agency:
        lines.append(f"{Label.PICK}: {brief.agency.split(':')[0]}")
    if brief.characters:
        lines.append(f"{Label.CHARACTERS}: " + "; ".join(
            f"{name}: {_clip(description, _CHARACTER_CHARS)}" for name, description in brief.characters[:_CHARACTERS]))
    if brief.story_so_far:
        lines.append(f"{Label.STORY_SO_FAR}: {_clip(brief.story_so_far[-1].split(': ', 1)[-1], _SUMMARY_CHARS)}")
    if brief.last_chapter:
        lines.append(f"{Label.LAST_CHAPTER}: …{_ending(brief.last_chapter, _LAST_CHAPTER_CHARS)}")
    if brief.previous_choice is not None:
        lines.append(f"{Label.READER_CHOSE}: {brief.previous_choice}." if brief.previous_correct is None
                     else f"{Label.READER_ANSWERED} a question. {ANSWERED}")
    lines.append("".join(text for text, _ in task_parts(brief)))
    return [{"role": "system", "content": system_prompt()}, {"role": "user", "content": "\n".join(lines)}]


def chapter_directives(brief: ChapterBrief) -> list[str]:
    answered = [ANSWERED] if brief.previous_correct is not None else []
    return [STORYTELLER, STYLE_EXAMPLE, GO_ON, *answered,
            *(text for text, instruction in task_parts(brief) if instruction)]


def task_parts(brief: ChapterBrief) -> list[tuple[str, bool]]:
    """The task lines in parts: (text, whether it is an instruction rather than story material
    such as the question, a place or the special picks, which the story is meant to repeat)."""
    task = f"{Label.TASK}: Write about {WORDS} words"
    if brief.agency_options:
        picks = [option.split(":")[0] for option in brief.agency_options]
        return [(f"{task}: the first part of the adventure. You arrive at ", True), (brief.world.settings[0], False),
                (". Something surprising happens. At the end, a kind guide offers you one of three gifts: ", True),
                (f"{picks[0]}; {picks[1]}; or {picks[2]}", False), (".", True)]
    if brief.type is ChapterType.LESSON and brief.question:
        return [(f"{Label.QUESTION}: {brief.question.question}\n", False),
                (f"{task} of what happens next. At the end, a friend asks you the lesson question.", True)]
    if brief.type is ChapterType.REFLECT and brief.previous_question:
        return [(f"{Label.REFLECT}: {brief.previous_question.subtopic}\n", False),
                (f"{task} of what happens next. You rest, think about what you have learned, and set off again.",
                 True)]
    if brief.type is ChapterType.CONCLUSION:
        return [(f"{task}: the happy end of the adventure, where everything turns out well.", True)]
    begin = "Begin with what happens when you do that, and end" if brief.previous_choice else "End"
    return [(f"{task} of what happens next. {begin} at a moment where you must decide what to do.", True)]


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(" ".join(text.split()), maxsplit=1)[0]


def _clip(text: str, chars: int) -> str:
    """At most `chars` characters, ended at a word."""
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + "…"


def _ending(text: str, chars: int) -> str:
    """The last whole sentences of `text` within `chars` characters (at least the last one)."""
    sentences = [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]
    kept: list[str] = []
    for sentence in reversed(sentences):
        if kept and len(sentence) + sum(map(len, kept)) > chars:
            break
        kept.insert(0, sentence)
    return " ".join(kept)[-chars * 2:]
