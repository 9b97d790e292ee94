"""Prompt builders: what each model call is asked to write.

Prompts are short and explicit because the embedded model is small. The `CHAPTER TYPE:`,
`LESSON QUESTION:` and `TASK:` lines are stable so that scripted test models can read them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from service.domain.plan import PHASE_GUIDANCE, phase_for
from service.domain.story import CHAPTER_COUNT, ChapterType, LessonQuestion, StoryWorld

CHOICES_FORMAT = "<CHOICES>\nChoice A: ...\nChoice B: ...\nChoice C: ...\n</CHOICES>"


@dataclass(frozen=True)
class ChapterBrief:
    """Everything a chapter prompt is built from."""

    world: StoryWorld
    topic_name: str
    number: int
    type: ChapterType
    agency: str | None = None
    agency_options: tuple[str, ...] = ()
    question: LessonQuestion | None = None
    previous_choice: str | None = None
    previous_correct: bool | None = None
    previous_question: LessonQuestion | None = None
    story_so_far: tuple[str, ...] = ()
    last_chapter: str | None = None
    characters: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def system_prompt(world: StoryWorld) -> str:
    return (
        "You are a warm, vivid storyteller writing an interactive adventure for readers aged 8 to 12. "
        "Write in the second person (\"you\"), in short paragraphs separated by blank lines, "
        "with simple words, kindness and wonder. Never write headings or chapter titles.\n"
        f"WORLD: {world.name}. {world.description}\n"
        f"Places: {', '.join(world.settings)}.\n"
        f"Themes: {', '.join(world.themes)}. Lessons of the heart: {', '.join(world.moral_teachings)}.\n"
        f"Sights: {', '.join(world.visuals)}. Sounds: {', '.join(world.sounds)}. Smells: {', '.join(world.smells)}."
    )


def chapter_messages(brief: ChapterBrief) -> list[dict]:
    phase = phase_for(brief.number)
    # What stays the same from chapter to chapter comes first: a local model can then reuse
    # the state of the prompt's common beginning instead of reading it again.
    lines = [f"LESSON TOPIC: {brief.topic_name}"]
    if brief.agency:
        lines.append(f"THE HERO'S SPECIAL PICK (keep it part of the story): {brief.agency}")
    if brief.characters:
        lines.append("CHARACTERS (keep them looking the same): "
                     + "; ".join(f"{name}: {desc}" for name, desc in brief.characters))
    if brief.story_so_far:
        lines.append("STORY SO FAR:\n" + "\n".join(brief.story_so_far))
    if brief.last_chapter:
        lines.append("THE LAST CHAPTER:\n" + brief.last_chapter)
    lines += [
        f"CHAPTER: {brief.number} of {CHAPTER_COUNT}",
        f"CHAPTER TYPE: {brief.type.value}",
        f"STORY PHASE: {phase.value}. {PHASE_GUIDANCE[phase]}",
    ]
    lines.extend(_previous_choice_lines(brief))
    lines.append(_task_line(brief))
    return [
        {"role": "system", "content": system_prompt(brief.world)},
        {"role": "user", "content": "\n\n".join(lines)},
    ]


def _previous_choice_lines(brief: ChapterBrief) -> list[str]:
    if brief.previous_choice is None:
        return []
    if brief.previous_correct is None:
        return [f"THE READER CHOSE: {brief.previous_choice}. Begin with what happens because of it."]
    verdict = "which is right" if brief.previous_correct else "which is not right"
    right = brief.previous_question.correct_answer if brief.previous_question else ""
    return [
        f"THE READER ANSWERED: {brief.previous_choice}, {verdict}. The right answer is: {right}. "
        + ("Celebrate it briefly in the story." if brief.previous_correct
           else "Let a friendly character gently share the right answer.")
    ]


def _task_line(brief: ChapterBrief) -> str:
    words = "Write about 250 words."
    if brief.type is ChapterType.LESSON and brief.question:
        return (
            f"LESSON QUESTION: {brief.question.question}\n"
            f"{words} Lead the story to a moment where a character asks the reader exactly this question, "
            "word for word, as the last sentence. Do not give the answer and do not list any choices."
        )
    if brief.type is ChapterType.REFLECT and brief.previous_question:
        q = brief.previous_question
        return (
            f"REFLECT ON: {q.question} The answer is {q.correct_answer}. Why: {q.explanation}\n"
            f"{words} Let the hero think about this question and explain the answer in the story. "
            f"Then end with exactly this block of three different next steps:\n{CHOICES_FORMAT}"
        )
    if brief.type is ChapterType.CONCLUSION:
        return f"{words} Bring the adventure to a happy, satisfying end. Do not offer any choices."
    if brief.agency_options:
        return (
            f"{words} Introduce the hero and the world. End at a moment where the hero must pick one of: "
            + "; ".join(brief.agency_options) + ". Do not write a choices block."
        )
    return f"{words} Then end with exactly this block of three different next steps:\n{CHOICES_FORMAT}"


def choices_repair_messages(chapter_text: str) -> list[dict]:
    return [
        {"role": "system", "content": "You write the three choices at the end of a children's adventure chapter."},
        {"role": "user", "content": (
            "TASK: CHOICES\nCHAPTER:\n" + chapter_text[-2500:]
            + f"\n\nWrite three different things the hero could do next, each under 15 words, in exactly "
            f"this format and nothing else:\n{CHOICES_FORMAT}"
        )},
    ]


def summary_messages(number: int, chapter_text: str, question: LessonQuestion | None) -> list[dict]:
    ask = f' Name the question "{question.question}" word for word.' if question else ""
    return [
        {"role": "system", "content": "You summarise chapters of a children's adventure."},
        {"role": "user", "content": (
            f"TASK: SUMMARY\nCHAPTER {number}:\n{chapter_text[-4000:]}\n\n"
            "Answer in exactly this format:\nTitle: <a title of 5 to 10 words>\n"
            f"Summary: <70 to 100 words in the past tense>{ask}"
        )},
    ]


def characters_messages(number: int, chapter_text: str, known: list[tuple[str, str]]) -> list[dict]:
    listed = "; ".join(f"{n}: {d}" for n, d in known) or "none yet"
    return [
        {"role": "system", "content": "You keep track of the characters in a children's adventure."},
        {"role": "user", "content": (
            f"TASK: CHARACTERS\nKNOWN CHARACTERS: {listed}\nCHAPTER {number}:\n{chapter_text[-4000:]}\n\n"
            'Return every character seen so far as a JSON array: [{"name": "...", "description": '
            '"a short visual description"}]. Return only the JSON.'
        )},
    ]
