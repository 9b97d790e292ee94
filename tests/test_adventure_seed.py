"""An adventure's seed decides its plan, its lesson questions and the offer its first chapter
makes: a random seed for every player, one fixed by ADVENTURE_SEED for tests and benchmarks."""
from __future__ import annotations

import json
import random

import pytest

from service.chapters.game import draw
from service.config import Settings
from service.content.loader import load_catalog
from service.domain.agency import offer_agency
from tests.support import player
from tests.support.database import rows

WORLD, TOPIC = "capwood-hollow", "plants"


def _stored(database_url: str) -> list[tuple[int, list[str], list[str]]]:
    return [(seed, json.loads(plan), json.loads(ids))
            for seed, plan, ids in rows(database_url, "SELECT seed, plan, question_ids FROM adventures ORDER BY rowid")]


def _drawn(seed: int) -> tuple[int, list[str], list[str]]:
    questions, plan = draw(seed, load_catalog().topics[TOPIC])
    return seed, [kind.value for kind in plan], [question.id for question in questions]


@pytest.mark.parametrize("adventure_seed", [12345])
def test_when_adventure_seed_is_set_then_every_adventure_draws_what_that_seed_gives(
    client, scripted_model, database_url, adventure_seed
):
    for _ in range(2):
        player.read_chapter(client, player.start(client, WORLD, TOPIC))

    assert _stored(database_url) == [_drawn(adventure_seed)] * 2
    offer = [option.label for option in offer_agency(random.Random(adventure_seed))]
    prompts = [request["messages"][-1]["content"] for request in scripted_model.requests if request["stream"]]
    assert len(prompts) == 2 and all(label in prompt for prompt in prompts for label in offer), (
        "the first chapter was not written from the seed's offer")


def test_when_adventure_seed_is_unset_then_each_adventure_draws_from_a_random_seed_of_its_own(
    client, database_url
):
    for _ in range(3):
        player.start(client, WORLD, TOPIC)

    stored = _stored(database_url)
    assert len({seed for seed, _, _ in stored}) == 3, f"adventures shared a seed: {stored}"
    assert stored == [_drawn(seed) for seed, _, _ in stored]


def test_the_seed_is_read_from_the_adventure_seed_variable(monkeypatch):
    monkeypatch.setenv("ADVENTURE_SEED", "42")
    assert Settings(_env_file=None).adventure_seed == 42
    monkeypatch.delenv("ADVENTURE_SEED")
    assert Settings(_env_file=None).adventure_seed is None
