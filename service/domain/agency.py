"""The choices a reader makes to shape their hero: a companion, an artifact, a profession or an ability.

Pure data plus a deterministic offer: the caller owns the random source, so a seeded story
replays exactly.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

from service.domain.story import AgencyOption


def _options(category: str, *pairs: tuple[str, str]) -> tuple[AgencyOption, ...]:
    return tuple(AgencyOption(category, name, description) for name, description in pairs)


AGENCY_OPTIONS: dict[str, tuple[AgencyOption, ...]] = {
    "companion": _options(
        "companion",
        ("a lantern-eyed owl", "sees clearly in the darkest places"),
        ("a chatty paper fox", "folds itself flat to slip through cracks"),
        ("a brave hermit crab", "carries a shell full of useful odds and ends"),
        ("a tiny cloud pony", "gallops across puddles and rooftops"),
        ("a clockwork beetle", "ticks louder when danger is near"),
        ("a sleepy star-turtle", "remembers every map it has ever seen"),
        ("a giggling moss sprite", "can talk with plants and trees"),
    ),
    "artifact": _options(
        "artifact",
        ("a compass that points home", "always shows the way back to friends"),
        ("a never-empty satchel", "holds one more thing than it should"),
        ("a humming glass key", "opens doors that are stuck or shy"),
        ("a whispering map", "quietly names the places it shows"),
        ("a pocket lantern", "glows brighter when someone tells the truth"),
        ("a patchwork umbrella", "floats gently down from any height"),
        ("a spyglass of echoes", "lets you hear faraway voices"),
    ),
    "profession": _options(
        "profession",
        ("an apprentice mapmaker", "draws maps of places no one has charted"),
        ("a junior inventor", "builds clever gadgets from scraps"),
        ("a young herbalist", "knows which plants heal and which ones sting"),
        ("a ship's lookout", "spots things before anyone else does"),
        ("a wandering storyteller", "calms anyone with a good tale"),
        ("a trainee tunnel engineer", "knows how to make a path safe"),
        ("a star-chart keeper", "finds the way by reading the sky"),
    ),
    "ability": _options(
        "ability",
        ("talking with animals", "understands birds, beasts and bugs"),
        ("a perfect memory", "never forgets a face or a path"),
        ("understanding any language", "reads every sign and greets every stranger"),
        ("a feather-light step", "walks silently, even on crunchy leaves"),
        ("quick thinking", "finds a clever plan in a hurry"),
        ("seeing in the dark", "eyes that work without any light"),
        ("shrinking small", "becomes mouse-sized for one minute"),
    ),
}

OFFER_SIZE = 3

_BY_LABEL: dict[str, AgencyOption] = {
    option.label: option for options in AGENCY_OPTIONS.values() for option in options
}


def offer_agency(rng: random.Random) -> list[AgencyOption]:
    """Three options from three different categories, so every offer is a real choice of kind."""
    # Sorting first keeps the draw independent of dict insertion order.
    categories = rng.sample(sorted(AGENCY_OPTIONS), OFFER_SIZE)
    return [rng.choice(AGENCY_OPTIONS[category]) for category in categories]


def find_agency(label: str) -> AgencyOption | None:
    # Labels come back from form posts, where stray surrounding whitespace is common.
    return _BY_LABEL.get(label.strip())


def gifts_offered(labels: Sequence[str], story_text: str) -> str | None:
    """The service's own closing line for the first chapter when its story does not name
    every gift on offer (a small model seldom does): the buttons then follow from the page."""
    names = [label.split(":")[0].strip() for label in labels]
    told = " ".join(story_text.casefold().split())
    if all(name.casefold().removeprefix("a ").removeprefix("an ") in told for name in names):
        return None
    listed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
    return f"A kind guide smiles and holds out three gifts: {listed}. Which one will you take with you?"
