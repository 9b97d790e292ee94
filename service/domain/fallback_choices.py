"""The buttons offered when neither the model nor its second try wrote usable choices: built
from the story's names and the world's places, each a whole phrase ("Explore the Icicle
Stairs", never "... at the very top of"), and never a quiz answer taken for a character.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

import regex

from service.domain.choices import is_valid_choice
from service.domain.story import StoryWorld

# A capitalised word that follows a lowercase word or a comma is a name, not a sentence start.
_NAME = regex.compile(r"(?<=[a-z,;]\s+)([A-Z][a-z]{2,}(?:[ -][A-Z][a-z]{2,})?)\b")
_NOT_NAMES = frozenset(
    {
        "the", "a", "an", "and", "but", "or", "so", "then", "when", "while", "she", "he", "they",
        "we", "you", "his", "her", "their", "its", "our", "your", "this", "that", "these", "those",
        "there", "here", "what", "where", "who", "why", "how", "chapter", "choice", "choices",
        "option", "mister", "miss", "mr", "mrs", "god", "lord", "lady", "sir", "captain",
    }
)
_GENERIC_CHOICES = (
    "Look around carefully for hidden clues",
    "Ask the guide what the strange sound means",
    "Rest for a moment and make a careful plan",
    "Go back and check what you might have missed",
    "Call out to see if anyone else is nearby",
)
# A place's name for a fallback button: a phrase this long is cut before its first
# preposition ("the ruins of an ancient tower" -> "the ruins"), never in the middle of one.
_MAX_PLACE_WORDS = 6
_PLACE_BREAKS = regex.compile(
    r"\s+(?:of|at|on|in|into|under|over|near|by|with|where|that|which|who|for|to|from|beside|behind|above|"
    r"below|across|through|along|around|inside|between|beneath|among)\s+")
def _names_in(story_text: str, avoid: Sequence[str] = ()) -> list[str]:
    """Names by how often they are mentioned, first-mentioned first on ties; none of the words
    of `avoid` (a lesson's answers and its topic, which are not characters to follow: "Earth's
    axis" names no "Earth")."""
    avoided = {word.casefold() for answer in avoid for word in regex.findall(r"\w+", answer)}
    counts: dict[str, int] = {}
    for match in _NAME.finditer(story_text):
        name = match.group(1)
        if name.split()[0].casefold() not in _NOT_NAMES and not {w.casefold() for w in name.split()} & avoided:
            counts[name] = counts.get(name, 0) + 1
    return sorted(counts, key=lambda name: -counts[name])


def _place(setting: str) -> str:
    """A setting description shortened to a phrase that reads well after "toward" or "Explore"."""
    phrase = regex.split(r"[,;:(]| - | – | — |\.", setting.strip(), maxsplit=1)[0].strip()
    words = phrase.split()
    if len(words) > _MAX_PLACE_WORDS:
        words = _PLACE_BREAKS.split(phrase, maxsplit=1)[0].split()
        # "the Icicle Stairs carved into ...", "the Robot Repair Bay full of ...": a named place
        # ends at its name's last word.
        named = [i for i, word in enumerate(words[:_MAX_PLACE_WORDS]) if i and word[:1].isupper()]
        words = words[: named[-1] + 1] if named else words
    if len(words) > _MAX_PLACE_WORDS:
        words = []
    if not words:
        return ""
    if words[0] in ("The", "A", "An"):
        words[0] = words[0].lower()
    elif words[0][0].islower() and words[0] not in ("the", "a", "an"):
        words.insert(0, "the")
    return " ".join(words)


def _world_choices(story_text: str, world: StoryWorld, rng: random.Random, avoid: Sequence[str]) -> list[str]:
    """Follow a name, explore a place, talk to a name: in that order so the three differ in kind."""
    places = [place for place in map(_place, world.settings) if place]
    rng.shuffle(places)
    names = _names_in(story_text, avoid)[:2]
    out = []
    if names and places:
        out.append(f"Follow {names[0]} toward {places.pop(0)}")
    out.extend(f"Explore {place}" for place in places[:1])
    out.extend(f"Ask {name} what should happen next" for name in names[-1:])
    out.extend(f"Explore {place}" for place in places[1:])
    return out


def fallback_choices(story_text: str, world: StoryWorld, rng: random.Random, avoid: Sequence[str] = ()) -> list[str]:
    """Three usable choices for when neither the model nor the repair call produced any."""
    generic = list(_GENERIC_CHOICES)
    rng.shuffle(generic)
    picked: list[str] = []
    for choice in _world_choices(story_text, world, rng, avoid) + generic:
        choice = regex.sub(r"\s+", " ", choice).strip()
        if is_valid_choice(choice) and choice.casefold() not in {c.casefold() for c in picked}:
            picked.append(choice)
        if len(picked) == 3:
            break
    return picked
