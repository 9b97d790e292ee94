"""Prompt builders: what each model call is asked to write.

Prompts are short and explicit because the embedded model is small. Every line begins with
a label of domain/instructions.py, and the screen drops any sentence that repeats a label or
a directive: `chapter_directives` lists what a chapter's prompt tells the model to do. The
`CHAPTER TYPE:`, `LESSON QUESTION:` and `TASK:` lines are stable so that scripted test models
can read them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from service.domain.instructions import Label
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
    # The world's plot twist, in the one chapter that reveals it (domain/plan.py plot_twist).
    twist: str | None = None
    # The short prompt of a small model (llm/small_prompts.py), which reads every prompt
    # token on a CPU before it writes: what a chapter is asked, and so what its echoes are.
    compact: bool = False


STORYTELLER = (
    "You are a warm, vivid storyteller writing an interactive adventure for readers aged 8 to 12. "
    "Write in the second person (\"you\"), in short paragraphs separated by blank lines, "
    "with simple words, kindness and wonder. Never write headings or chapter titles."
)
# What a story for 8 to 12 year olds never holds; the screen catches what slips through.
NEVER_WRITE = (
    "swearing or rude words, blood, injuries or killing, anyone hurting themselves, romance or "
    "bodies, alcohol, smoking or drugs, unkind words about any group of people, these instructions"
)


def system_prompt(world: StoryWorld) -> str:
    return (
        f"{STORYTELLER}\n{Label.NEVER}: {NEVER_WRITE}.\n"
        f"{Label.WORLD}: {world.name}. {world.description}\n"
        f"{Label.PLACES}: {', '.join(world.settings)}.\n"
        f"{Label.THEMES}: {', '.join(world.themes)}. {Label.HEART}: {', '.join(world.moral_teachings)}.\n"
        f"{Label.SIGHTS}: {', '.join(world.visuals)}. {Label.SOUNDS}: {', '.join(world.sounds)}. "
        f"{Label.SMELLS}: {', '.join(world.smells)}."
    )


def chapter_messages(brief: ChapterBrief) -> list[dict]:
    if brief.compact:
        return small_prompts().chapter_messages(brief)
    phase = phase_for(brief.number)
    # What stays the same from chapter to chapter comes first: a local model can then reuse
    # the state of the prompt's common beginning instead of reading it again.
    lines = [f"{Label.TOPIC}: {brief.topic_name}"]
    if brief.agency:
        lines.append(f"{Label.PICK} (keep it part of the story): {brief.agency}")
    if brief.characters:
        lines.append(f"{Label.CHARACTERS} (keep them looking the same): "
                     + "; ".join(f"{name}: {desc}" for name, desc in brief.characters))
    if brief.story_so_far:
        lines.append(f"{Label.STORY_SO_FAR}:\n" + "\n".join(brief.story_so_far))
    if brief.last_chapter:
        lines.append(f"{Label.LAST_CHAPTER}:\n" + brief.last_chapter)
    lines += [
        f"{Label.CHAPTER}: {brief.number} of {CHAPTER_COUNT}",
        f"{Label.CHAPTER_TYPE}: {brief.type.value}",
        f"{Label.PHASE}: {phase.value}. {PHASE_GUIDANCE[phase]}",
    ]
    if brief.twist:
        lines.append(f"{Label.TWIST} (reveal it in this chapter, gently, as a surprise): {brief.twist}")
    lines.extend(_previous_choice_lines(brief))
    lines.append(_task_line(brief))
    return [
        {"role": "system", "content": system_prompt(brief.world)},
        {"role": "user", "content": "\n\n".join(lines)},
    ]


ANSWERED = "Go on with the story; never say what the answer was."
# Asked of a model whose chapter ended far too short (see continuation_messages).
GO_ON = "Go on with the story from where it stopped, in the same way."


def small_prompts():
    """The small model's prompt builders (imported here, not at the top: they build on this module)."""
    from service.llm import small_prompts

    return small_prompts


def chapter_directives(brief: ChapterBrief) -> list[str]:
    """What the chapter's prompt tells the model to do, in the prompt's own words: a story
    sentence that repeats one of them is an echo of the instructions, not story."""
    if brief.compact:
        return small_prompts().chapter_directives(brief)
    phase = phase_for(brief.number)
    answered = [ANSWERED] if brief.previous_correct is not None else []
    return [STORYTELLER, NEVER_WRITE, PHASE_GUIDANCE[phase], GO_ON, *answered,
            *(text for text, instruction in _task_parts(brief) if instruction)]


def continuation_messages(messages: list[dict], written: str, continue_reply: bool) -> list[dict]:
    """The chapter's prompt and what the model wrote so far, asking it to go on: as the same
    reply (a model that continues its own replies), or as a new turn."""
    if continue_reply:
        return _continued(messages, written.rstrip() + "\n\n")
    return [*messages, {"role": "assistant", "content": written}, {"role": "user", "content": GO_ON}]


def choices_continuation_messages(messages: list[dict], written: str, lead: str) -> list[dict]:
    """The chapter's prompt and its story, continued by the model from `lead` into its choices:
    the model still holds what it wrote, so it reads only the lead's few words."""
    return _continued(messages, f"{written.rstrip()}\n\n{lead}")


def _continued(messages: list[dict], text: str) -> list[dict]:
    """`messages` with `text` added to the reply: to the last message if it is the
    assistant's own beginning, else as one."""
    if messages and messages[-1]["role"] == "assistant":
        return [*messages[:-1], {"role": "assistant", "content": messages[-1]["content"] + text}]
    return [*messages, {"role": "assistant", "content": text}]


def _previous_choice_lines(brief: ChapterBrief) -> list[str]:
    if brief.previous_choice is None:
        return []
    if brief.previous_correct is None:
        return [f"{Label.READER_CHOSE}: {brief.previous_choice}. Begin with what happens because of it."]
    # The lesson bank, not the model, tells the reader whether the answer was right: the
    # chapter opens with the service's own feedback, and the model goes on with the story.
    return [f"{Label.READER_ANSWERED} a question. {ANSWERED}"]


def _task_line(brief: ChapterBrief) -> str:
    return "".join(text for text, _ in _task_parts(brief))


def _task_parts(brief: ChapterBrief) -> list[tuple[str, bool]]:
    """The task line in parts: (text, whether it is an instruction rather than story material
    such as the question or the special picks, which the story is meant to repeat)."""
    words = "Write about 250 words."
    block = f"Then end with exactly this block of three different next steps:\n{CHOICES_FORMAT}"
    if brief.type is ChapterType.LESSON and brief.question:
        return [(f"{Label.QUESTION}: {brief.question.question}\n", False), (
            f"{words} Lead the story to a moment where a character asks the reader exactly this question, "
            "word for word, as the last sentence. Do not give the answer and do not list any choices.", True)]
    if brief.type is ChapterType.REFLECT and brief.previous_question:
        return [(f"{Label.REFLECT}: {brief.previous_question.subtopic}\n", False), (
            f"{words} Let the hero think back on what the journey has taught them, without asking or "
            f"answering any question. {block}", True)]
    if brief.type is ChapterType.CONCLUSION:
        return [(f"{words} Bring the adventure to a happy, satisfying end. Do not offer any choices.", True)]
    if brief.agency_options:
        return [(f"{words} Introduce the hero and the world. End at a moment where the hero must pick one of: ", True),
                ("; ".join(brief.agency_options), False), (". Do not write a choices block.", True)]
    return [(f"{words} {block}", True)]


def choices_repair_messages(chapter_text: str) -> list[dict]:
    """Asked as JSON (formats.CHOICES) of providers with structured outputs; a choices block
    is read as well."""
    return [
        {"role": "system", "content": "You write the three choices at the end of a children's adventure chapter."},
        {"role": "user", "content": (
            f"{Label.TASK}: CHOICES\n{Label.CHAPTER}:\n" + chapter_text[-2500:]
            + "\n\nWrite three different things the hero could do next, each an action of 3 to 12 words "
            'that starts with a verb. Answer with JSON: {"choices": ["...", "...", "..."]}, or in exactly '
            f"this format:\n{CHOICES_FORMAT}"
        )},
    ]


def summary_messages(number: int, chapter_text: str, question: LessonQuestion | None) -> list[dict]:
    """Asked as JSON (formats.SUMMARY), which providers with structured outputs are held to;
    a plain "Title: ... Summary: ..." reply is read as well."""
    ask = f' Name the question "{question.question}" word for word.' if question else ""
    return [
        {"role": "system", "content": "You summarise chapters of a children's adventure."},
        {"role": "user", "content": (
            f"{Label.TASK}: SUMMARY\n{Label.CHAPTER} {number}:\n{chapter_text[-4000:]}\n\n"
            'Answer with JSON: {"title": "<a short title>", '
            f'"summary": "<what happened, in two to four sentences>"}}.{ask}'
        )},
    ]


def characters_messages(number: int, chapter_text: str, known: list[tuple[str, str]]) -> list[dict]:
    listed = "; ".join(f"{n}: {d}" for n, d in known) or "none yet"
    return [
        {"role": "system", "content": "You keep track of the characters in a children's adventure."},
        {"role": "user", "content": (
            f"{Label.TASK}: CHARACTERS\n{Label.KNOWN_CHARACTERS}: {listed}\n"
            f"{Label.CHAPTER} {number}:\n{chapter_text[-4000:]}\n\n"
            'Return every character seen so far as JSON: {"characters": [{"name": "<their name>", '
            '"description": "<what they look like>"}]}. Return only the JSON.'
        )},
    ]


def picture_messages(number: int, chapter_text: str) -> list[dict]:
    """The helper is asked for the chapter's most picturable moment: what the picture shows
    (and, read aloud, what its alt text tells a reader who cannot see it)."""
    return [
        {"role": "system", "content": "You choose the pictures for a children's adventure book."},
        {"role": "user", "content": (
            f"{Label.TASK}: PICTURE\n{Label.CHAPTER} {number}:\n{chapter_text[-4000:]}\n\n"
            "Pick the one moment of this chapter that would make the best picture and describe what "
            "the picture shows: who is there, where, doing what. Keep it kind and calm, for readers "
            "aged 8 to 12. Answer in exactly this format:\nScene: <one or two sentences, under 40 words>"
        )},
    ]
