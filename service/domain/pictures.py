"""What a picture shows and the words it is drawn from: a chapter's scene, or one of the first
chapter's choices, always in the same illustration style, with the stored looks of the
characters it shows and the world's own sights. Pure rules: no I/O.
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import regex

from service.domain.lifecycle import TO_BE_WRITTEN, JobState
from service.domain.paragraphs import split_sentences
from service.domain.story import AgencyOption, StoryWorld

# Every picture of every adventure is drawn in this style, so the pictures of one story
# look like one book. No colons: the child-safety screen reads "Word:" as a prompt label.
ILLUSTRATION_STYLE = (
    "A storybook illustration for children aged 8 to 12, painted in soft watercolour and ink, "
    "with warm light, gentle colours and friendly faces, and no words or letters anywhere in the picture."
)
MIN_SCENE_WORDS = 5
MAX_SCENE_WORDS = 45
# The world's sights a prompt names: enough to place the picture, few enough to leave room
# for the scene.
WORLD_SIGHTS = 2

_SCENE = regex.compile(r"^\W*scene\W*:\s*(.+)$", regex.I | regex.M)
_NAME_WORD = regex.compile(r"\p{L}[\p{L}'’-]{2,}")


class SlotState(StrEnum):
    READY = "ready"      # the picture exists: the slot shows it
    PENDING = "pending"  # it is still to be drawn: the slot keeps its place for it
    NONE = "none"        # there will be none (failed, dropped, or never asked for)


def slot_state(has_picture: bool, chapter_state: str, job_state: str | None) -> SlotState:
    """What a chapter's picture slot shows, from the picture, the chapter and its job."""
    if has_picture:
        return SlotState.READY
    if chapter_state in TO_BE_WRITTEN or job_state in (JobState.PENDING, JobState.RUNNING):
        return SlotState.PENDING
    return SlotState.NONE


def parse_scene(reply: str) -> str | None:
    """The scene from a reply like "Scene: ...": one or two sentences, or None when the reply
    holds too few words to picture."""
    found = _SCENE.search(reply)
    if found:
        text = found.group(1)
    else:
        text = next((line for line in reply.splitlines() if line.strip()), "")
    text = " ".join(text.replace("*", "").replace("#", "").split()).strip(" \"'“”")
    kept: list[str] = []
    for sentence in split_sentences(text):
        if kept and len(" ".join(kept + [sentence]).split()) > MAX_SCENE_WORDS:
            break
        kept.append(sentence)
    scene = " ".join(" ".join(kept).split()[:MAX_SCENE_WORDS])
    return scene if len(scene.split()) >= MIN_SCENE_WORDS else None


def named_in(scene: str, characters: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The characters the scene names (by any word of three letters or more of their name)."""
    words = {w.casefold() for w in _NAME_WORD.findall(scene)}
    return [(name, look) for name, look in characters
            if any(w.casefold() in words for w in _NAME_WORD.findall(name))]


def scene_prompt(scene: str, characters: Iterable[tuple[str, str]], world: StoryWorld) -> str:
    """The image prompt for a chapter's scene: the style, the scene, the looks of the
    characters in it (the same words in every picture) and the world's sights."""
    return " ".join([ILLUSTRATION_STYLE, _sentence(scene), *_looks(scene, characters), _setting(world)])


def recurring_parts(scene: str, characters: Iterable[tuple[str, str]], world: StoryWorld) -> list[str]:
    """The parts of the scene's prompt besides the scene itself, each the same in many
    pictures: the style, each look of a character the scene names, the world's sights."""
    return [ILLUSTRATION_STYLE, *_looks(scene, characters), _setting(world)]


def _looks(scene: str, characters: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{name} is always drawn as {_lower_first(look).rstrip('.')}."
            for name, look in named_in(scene, characters)]


def option_subject(option: AgencyOption) -> str:
    """Who or what the picture beside a first-chapter choice shows."""
    if option.category == "profession":
        return f"a young hero who is {option.name}"
    if option.category == "ability":
        return f"a young hero with the gift of {option.name}"
    return option.name


def option_prompt(option: AgencyOption, world: StoryWorld) -> str:
    subject = _upper_first(option_subject(option))
    return " ".join([ILLUSTRATION_STYLE, f"{subject} ({option.description}).", _setting(world)])


def option_alt(option: AgencyOption, world: StoryWorld) -> str:
    return f"{_upper_first(option_subject(option))} in {world.name}"


def _setting(world: StoryWorld) -> str:
    sights = ", ".join(world.visuals[:WORLD_SIGHTS])
    return f"The picture is set in {world.name}, with {sights}." if sights else f"The picture is set in {world.name}."


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]
