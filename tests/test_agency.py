"""The hero-shaping choices: what is on offer, and how an offer is drawn."""
from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from service.domain.agency import AGENCY_OPTIONS, find_agency, gifts_offered, offer_agency

CATEGORIES = {"companion", "artifact", "profession", "ability"}


def test_there_are_four_categories_each_with_at_least_six_options_of_that_category() -> None:
    assert set(AGENCY_OPTIONS) == CATEGORIES
    for category, options in AGENCY_OPTIONS.items():
        assert len(options) >= 6, category
        assert all(option.category == category for option in options)
        assert all(option.name.strip() and option.description.strip() for option in options)


def test_every_option_has_a_unique_label() -> None:
    labels = [option.label for options in AGENCY_OPTIONS.values() for option in options]
    assert len(labels) == len(set(labels))


@given(st.integers())
def test_an_offer_is_three_options_from_three_different_categories(seed: int) -> None:
    offer = offer_agency(random.Random(seed))
    assert len(offer) == 3
    assert len({option.category for option in offer}) == 3
    assert all(option in AGENCY_OPTIONS[option.category] for option in offer)


@given(st.integers())
def test_the_same_seed_always_gives_the_same_offer(seed: int) -> None:
    assert offer_agency(random.Random(seed)) == offer_agency(random.Random(seed))


def test_offers_vary_across_seeds_and_reach_every_category() -> None:
    offers = [tuple(offer_agency(random.Random(seed))) for seed in range(300)]
    assert len(set(offers)) > 100
    assert {option.category for offer in offers for option in offer} == CATEGORIES
    offered = {option for offer in offers for option in offer}
    assert offered == {option for options in AGENCY_OPTIONS.values() for option in options}


def test_an_offer_draws_only_from_the_given_rng_not_the_global_one() -> None:
    before = random.getstate()
    offer_agency(random.Random(7))
    assert random.getstate() == before


def test_every_option_can_be_found_by_its_label_even_with_surrounding_spaces() -> None:
    for options in AGENCY_OPTIONS.values():
        for option in options:
            assert find_agency(option.label) is option
            assert find_agency(f"  {option.label}\n") is option


def test_an_unknown_label_finds_nothing() -> None:
    assert find_agency("a dragon that does homework: finishes every worksheet") is None
    assert find_agency("") is None
    some_option = AGENCY_OPTIONS["companion"][0]
    assert find_agency(some_option.name) is None


LABELS = ["a whispering map: quietly names the places it shows", "quick thinking: finds a clever plan in a hurry",
          "a brave hermit crab: carries a shell full of useful odds and ends"]


def test_when_the_first_chapter_does_not_name_its_gifts_then_a_line_of_the_service_offers_them() -> None:
    """Regression: the first chapter's buttons offered gifts its story never spoke of."""
    line = gifts_offered(LABELS, "You take off your boots and walk into the forest with your family.")
    assert line == ("A kind guide smiles and holds out three gifts: a whispering map, quick thinking or a brave "
                    "hermit crab. Which one will you take with you?")


def test_when_the_first_chapter_names_every_gift_then_nothing_is_added() -> None:
    story = ("The guide shows you a Whispering Map, a hermit crab with a brave grin, and a trick of quick "
             "thinking.")
    assert gifts_offered(LABELS, story.replace("hermit crab with a brave grin", "brave hermit crab")) is None
