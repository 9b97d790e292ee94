"""The chapter prompt of a small embedded model: short, because a CPU reads every prompt token
before the first word (about 200 a second for SmolLM2-135M on one core), and plain, because a
135M model follows a few concrete words far better than a list of rules.

Its system part is the same for every chapter of every adventure, so the model keeps it read
(llm/local_engine.py); what stays the same within an adventure comes next; what changes goes
last and is kept to a few lines. The lines begin with the labels of domain/instructions.py,
and `chapter_directives` lists what it asks, as the screen needs.
"""
from __future__ import annotations

from service.domain.instructions import Label
from service.domain.paragraphs import split_sentences
from service.domain.story import ChapterType
from service.llm.prompts import GO_ON, ChapterBrief

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
_CHARACTERS = 2


def system_prompt() -> str:
    return f"{STORYTELLER}\n{Label.EXAMPLE}: {STYLE_EXAMPLE}"


def chapter_messages(brief: ChapterBrief) -> list[dict]:
    world = brief.world
    lines = [f"{Label.WORLD}: {world.name}. {_first_sentence(world.description)}",
             f"{Label.TOPIC}: {brief.topic_name}"]
    if brief.agency:
        lines.append(f"{Label.PICK}: {brief.agency.split(':')[0]}")
    if brief.characters:
        # Names only: given "Name: description" lines, a small model writes its chapter as more
        # of them, and the descriptions it wrote itself are seldom worth reading again.
        lines.append(f"{Label.CHARACTERS}: " + ", ".join(name for name, _ in brief.characters[:_CHARACTERS]) + ".")
    if brief.twist:
        lines.append(f"{Label.TWIST}: {brief.twist}")
    # Neither summaries of earlier chapters nor the last one's ending: measured over chains of
    # chapters, a 135M model copies a prompt's story text into its chapter (12 to 19 runs of
    # five words in a row per chapter), and reads summaries as a cue to write about a story.
    # The thread runs through the reader's choice, which the reply begins from (`opening`),
    # and through the characters and the special pick. The choice is not also a labelled
    # line: the model wrote such lines back ("The READER CHOSE: ...").
    lines.append("".join(text for text, _ in task_parts(brief)))
    return [{"role": "system", "content": system_prompt()}, {"role": "user", "content": "\n".join(lines)},
            {"role": "assistant", "content": opening(brief)}]


def opening(brief: ChapterBrief) -> str:
    """The sentence the model's reply goes on from (never shown: the reader just chose it, or
    it sets the scene). A small model that starts in the middle of a story goes on telling
    it, in the second person, instead of writing about a story."""
    if brief.number == 1 or brief.previous_choice is None:
        return f"You arrive at {brief.world.settings[0]}."
    if brief.previous_correct is not None:
        return "You think about the question for a moment, and then you go on."
    if brief.agency and brief.number == 2:
        return f"You choose your gift: {_chosen(brief)}."
    choice = brief.previous_choice.strip().rstrip(".!")
    return f"You decide to {choice[:1].lower()}{choice[1:]}."


def _chosen(brief: ChapterBrief) -> str:
    """The reader's choice; of the special picks, only the name ("a humming glass key")."""
    choice = brief.previous_choice or ""
    return choice.split(":")[0] if brief.agency and brief.number == 2 else choice.rstrip(".!")


def chapter_directives(brief: ChapterBrief) -> list[str]:
    return [STORYTELLER, STYLE_EXAMPLE, GO_ON, *(text for text, instruction in task_parts(brief) if instruction)]


def task_parts(brief: ChapterBrief) -> list[tuple[str, bool]]:
    """The task lines in parts: (text, whether it is an instruction rather than story material
    such as the question, a place or the special picks, which the story is meant to repeat)."""
    # No number of words: a small model writes the number into its story ("all 150 words").
    # The length comes from the model's token limits (LOCAL_MIN_TOKENS, CHAPTER_MAX_TOKENS).
    task = f"{Label.TASK}: Tell"
    if brief.agency_options:
        picks = [option.split(":")[0] for option in brief.agency_options]
        return [(f"{task} the first part of the adventure. Something surprising happens. At the end, a kind "
                 "guide offers you one of three gifts: ", True), (f"{picks[0]}; {picks[1]}; or {picks[2]}", False),
                (".", True)]
    if brief.type is ChapterType.LESSON and brief.question:
        return [(f"{Label.QUESTION}: {brief.question.question}\n", False),
                (f"{task} what happens next. At the end, a friend asks you the lesson question.", True)]
    if brief.type is ChapterType.REFLECT and brief.previous_question:
        return [(f"{Label.REFLECT}: {brief.previous_question.subtopic}\n", False),
                (f"{task} what happens next. You rest, think about what you have learned, and set off again.",
                 True)]
    if brief.type is ChapterType.CONCLUSION:
        return [(f"{task} the happy end of the adventure, where everything turns out well.", True)]
    return [(f"{task} what happens next, and end at a moment where you must decide what to do.", True)]


def _first_sentence(text: str) -> str:
    return next(iter(split_sentences(" ".join(text.split()))), "")
