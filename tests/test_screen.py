"""The child-safety screen on the stream: no word of an unfit term, no prompt label and no
lesson answer reaches the page, whatever the chunking; ordinary prose is never held back;
the chapter kept is the stream without the dropped sentences."""
from __future__ import annotations

from itertools import accumulate, cycle, takewhile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.chapters.screening import ChildSafety, lesson_answers
from service.content.loader import load_catalog
from service.content.screen_terms import load_lexicon
from service.domain.screen import SentenceScreen
from service.domain.screen_rules import DIRECTIVE_WORDS, Lexicon, ScreenRules, normal
from service.domain.story import ChapterType
from service.domain.stream_text import VisibleText
from service.llm.prompts import ChapterBrief, chapter_directives
from tests.support.scripted_replies import build_reply, split_chunks

SAFETY = ChildSafety(load_lexicon())
CATALOG = load_catalog()
WORLD = CATALOG.worlds["clockwork-harbor"]
BEFORE, AFTER = "Mira lifted the lantern high.", "Then the bell rang again over the water."
# One sentence a model might write in each category, and the word that must never show.
UNFIT = [
    ("profanity", "What the fuck is that noise, she shouted.", "fuck"),
    ("profanity", "This old map is total shit, said Tomas.", "shit"),
    ("gore", "Blood gushed from the wound on his arm.", "gushed"),
    ("gore", "The knight killed the goblin with one blow.", "killed"),
    ("self-harm", "She cut herself with the broken glass.", "herself"),
    ("self-harm", "The boy thought about suicide every night.", "suicide"),
    ("sexual", "The sailor stared at her naked body.", "naked"),
    ("sexual", "They had sex in the tent by the shore.", "sex"),
    ("sexual", "You take off your clothes and go into the forest.", "clothes"),
    ("unsafe adults", "He says that he is a spy who has been watching you all his life.", "you"),
    ("unsafe adults", "You ask your uncle if you can take a nap with him.", "him"),
    ("unsafe adults", "This will be our little secret, he whispers.", "secret"),
    ("alcohol", "The captain drank a whole bottle of whisky.", "whisky"),
    ("alcohol", "Mira ordered a cold beer at the tavern.", "beer"),
    ("drugs", "He lit a cigarette and blew smoke at the moon.", "cigarette"),
    ("drugs", "The merchant sold cocaine behind the market.", "cocaine"),
    ("hate", "Get away from me, you filthy faggot.", "faggot"),
    ("hate", "He shouted that all immigrants are criminals.", "criminals"),
]


def _brief(kind: ChapterType = ChapterType.STORY, **fields) -> ChapterBrief:
    return ChapterBrief(world=WORLD, topic_name="Plants", number=3, type=kind, **fields)


def _stream(text: str, chunks: list[str], rules: ScreenRules | None = None) -> tuple[VisibleText, list[str]]:
    visible = VisibleText(rules=rules or SAFETY.chapter_rules(_brief()))
    pieces = []
    for chunk in chunks:
        pieces.append(visible.feed(chunk))
        if visible.stopped:
            break
    pieces.append(visible.finish())
    return visible, pieces


def _chunks(text: str, sizes: list[int]) -> list[str]:
    starts = list(takewhile(lambda start: start < len(text), accumulate(cycle(sizes), initial=0)))
    return [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]


def _shown_words(pieces: list[str]) -> str:
    return " ".join(normal(w) for w in "".join(pieces).split())


@pytest.mark.parametrize("category, sentence, term", UNFIT, ids=[f"{c}-{t}" for c, _, t in UNFIT])
@pytest.mark.parametrize("chunking", ["words", "letters"])
def test_when_a_sentence_is_unfit_then_its_term_never_streams_and_the_chapter_goes_on_without_it(
    category, sentence, term, chunking
):
    text = f"{BEFORE} {sentence} {AFTER}"
    chunks = split_chunks(text, 1) if chunking == "words" else split_chunks(text, chunk_chars=2)
    visible, pieces = _stream(text, chunks)
    assert term not in _shown_words(pieces), f"{term!r} streamed"
    assert visible.text == f"{BEFORE} {AFTER}"
    assert [hit.category for hit in visible.screen.hits] == [category]


@settings(deadline=None, max_examples=60)
@given(st.sampled_from(UNFIT), st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=20))
def test_for_any_chunking_no_letter_run_of_an_unfit_term_streams_and_the_chapter_kept_is_the_same(case, sizes):
    _, sentence, term = case
    text = f"{BEFORE}\n\n{sentence} {AFTER}"
    visible, pieces = _stream(text, _chunks(text, sizes))
    whole, _ = _stream(text, [text])
    assert term not in "".join(pieces).casefold()
    assert visible.text == whole.text == f"{BEFORE}\n\n{AFTER}"


def _scripted_stories() -> list[str]:
    stories = set()
    for kind in ChapterType:
        for variant in range(8):
            _, reply = build_reply([{"role": "user", "content": f"CHAPTER TYPE: {kind}\nVARIANT {variant}"}])
            stories.add(reply.partition("\n\n<CHOICES>")[0].replace("\n\nYou ", "\n\nThen you "))
    return sorted(stories)


@pytest.mark.parametrize("story", _scripted_stories())
def test_when_ordinary_prose_streams_word_by_word_then_the_screen_holds_no_word_back(story):
    visible, received = VisibleText(rules=SAFETY.chapter_rules(_brief())), ""
    for number, token in enumerate(split_chunks(story, 1)):
        received += token
        visible.feed(token)
        assert "".join(visible.shown.split()) == "".join(received.split()), f"token {number} {token!r} waited"
    assert visible.screen.hits == []


@pytest.mark.parametrize("word", ["she", "he", "as", "bit", "ship", "Poof", "snatch", "class", "assemble",
                                  "Scunthorpe"])
def test_when_a_word_only_begins_like_a_listed_one_then_it_shows_as_it_is_written(word):
    visible = VisibleText(rules=SAFETY.chapter_rules(_brief()))
    shown = visible.feed(f"Mira saw {word}")
    assert shown.endswith(word)


@pytest.mark.parametrize("label", ["LESSON QUESTION: What is a root?", "STORY SO FAR: Mira found a key.",
                                   "THE HERO'S SPECIAL PICK (keep it part of the story): a lantern",
                                   "CHAPTER: 10 of 12", "CHAPTER TYPE: STORY", "NOTE: be kind.",
                                   "Places: the harbor and the docks.", "Story 1: The Cave",
                                   "TASK 1: Write about what happens next (you choose your gift)",
                                   "LESSON QUESTION 2: What is a root?"])
def test_when_a_prompt_label_appears_mid_chapter_then_its_line_is_dropped(label):
    text = f"{BEFORE}\n\n{label}\n\n{AFTER}"
    visible, pieces = _stream(text, split_chunks(text, 1))
    assert visible.text == f"{BEFORE}\n\n{AFTER}"
    assert visible.screen.hits and {hit.category for hit in visible.screen.hits} == {"instructions"}


@pytest.mark.parametrize("label", ["LESSON QUESTION: What is a root?", "STORY SO FAR: Mira found a key.",
                                   "TASK 1: Write about what happens next."])
def test_when_a_label_in_capitals_streams_then_not_a_letter_of_it_shows(label):
    text = f"{BEFORE} {label} {AFTER}"
    _, pieces = _stream(text, split_chunks(text, chunk_chars=2))
    assert "".join(pieces).split() == f"{BEFORE} {AFTER}".split()


@pytest.mark.parametrize("opening", ["The READER CHOSE: Go to the library and read.",
                                     "The HERO'S SPECIALPICK: a lantern.", "The HERO'S SPECIAL PICK: a lantern.",
                                     "THE READER ANSWERS a question to decide what to do.",
                                     "THEN YOU HAVE TO DO IT YOURSELF!",
                                     "THIS IS A LEGEND OF THE MOST ACCURATE IN YOUR LIFE."])
@pytest.mark.parametrize("chunking", ["words", "letters", "three letters"])
def test_when_a_sentence_opens_in_capitals_as_a_reworded_label_then_no_word_of_it_but_its_the_shows(
    opening, chunking
):
    """Regression: the embedded model wrote its prompt's labels back with a "The" before them,
    or reworded, or shouted in capitals, and they reached the page."""
    text = f"{BEFORE}\n\n{opening} {AFTER}"
    size = {"words": None, "letters": 2, "three letters": 3}[chunking]
    chunks = split_chunks(text, 1) if size is None else split_chunks(text, chunk_chars=size)
    visible, pieces = _stream(text, chunks)
    assert visible.text == f"{BEFORE}\n\n{AFTER}"
    shown = "".join(pieces).strip()
    between = shown.removeprefix(BEFORE).removesuffix(AFTER).split()
    # Only a "The" before the capitals, or a first capital alone, may have shown: neither
    # is a label yet when it comes.
    assert shown.startswith(BEFORE) and shown.endswith(AFTER) and between in ([], ["T"], ["Th"], ["The"],
                                                                             [opening[0]]), shown
    assert [hit.category for hit in visible.screen.hits] == ["instructions"]


@pytest.mark.parametrize("talk", ["Here is the story you asked for.", "As an AI, I cannot write that.",
                                  "Now I will write the choices block.", "The word count is about 250.",
                                  "So you have just completed your chapter.",
                                  "The last chapter was filled with questions.",
                                  "You are a storyteller who has always had great stories to share.",
                                  "You can choose any topic from my list of tasks.",
                                  "You choose your gift: A pocket lantern.",
                                  "The next task is: find the key.",
                                  "You choose your destination: Frostpeak Observatory."])
def test_when_the_model_talks_about_its_task_then_that_sentence_is_dropped(talk):
    visible, _ = _stream(f"{BEFORE} {talk} {AFTER}", split_chunks(f"{BEFORE} {talk} {AFTER}", 1))
    assert visible.text == f"{BEFORE} {AFTER}"


@pytest.mark.parametrize("chunking", ["words", "letters"])
def test_when_the_model_repeats_a_directive_of_its_prompt_then_that_sentence_is_dropped(chunking):
    brief = _brief(ChapterType.CONCLUSION)
    echo = "Bring the adventure to a happy, satisfying end."
    text = f"{BEFORE} {echo} {AFTER}"
    chunks = split_chunks(text, 1) if chunking == "words" else split_chunks(text, chunk_chars=2)
    visible, pieces = _stream(text, chunks, SAFETY.chapter_rules(brief))
    assert echo in " ".join(chapter_directives(brief))
    assert visible.text == f"{BEFORE} {AFTER}"
    # The word that makes it an echo never shows: the words before it may have streamed.
    shown = "".join(pieces).removeprefix(BEFORE).split(AFTER)[0].split()
    assert shown == echo.split()[:len(shown)] and len(shown) < DIRECTIVE_WORDS, shown


QUESTION = CATALOG.topics["animals-and-habitats"].questions[0]  # mammals: Dolphin, Shark, Octopus


@pytest.mark.parametrize("brief", [
    _brief(ChapterType.LESSON, question=QUESTION),
    _brief(ChapterType.REFLECT, question=QUESTION, previous_question=QUESTION, previous_choice="Shark",
           previous_correct=False),
    _brief(ChapterType.STORY, previous_question=QUESTION, previous_choice="Shark", previous_correct=False),
], ids=["lesson", "reflect", "after-an-answer"])
def test_when_a_lesson_chapter_names_an_answer_then_that_sentence_is_dropped(brief):
    wrong = "So here is my answer: Dolphin, which is not right at all."
    text = f"{BEFORE} {wrong} {AFTER} {QUESTION.question}"
    visible, pieces = _stream(text, split_chunks(text, 1), SAFETY.chapter_rules(brief))
    assert "dolphin" not in "".join(pieces).casefold()
    assert visible.text == f"{BEFORE} {AFTER} {QUESTION.question}"


def test_when_a_chapter_is_far_from_a_lesson_then_it_may_name_anything():
    assert lesson_answers(_brief(ChapterType.STORY, previous_choice="Look around", previous_correct=None)) == []


@pytest.mark.parametrize("topic", list(CATALOG.topics))
def test_when_every_bank_question_is_asked_word_for_word_then_the_screen_keeps_it(topic):
    """Regression: "What is 2/5 written as a decimal?" was dropped as naming the answer 2.5."""
    for question in CATALOG.topics[topic].questions:
        brief = _brief(ChapterType.LESSON, question=question)
        text = f"{BEFORE} Mira tapped the old map and asked: {question.question}"
        visible, _ = _stream(text, split_chunks(text, 1), SAFETY.chapter_rules(brief))
        assert visible.text == text, f"{question.question!r} was dropped: {visible.screen.hits}"


def test_when_two_sentences_are_unfit_then_the_chapter_ends_at_the_last_good_sentence():
    text = f"{BEFORE} He drank a beer. {AFTER} She lit a cigarette. The rest of the chapter."
    visible, _ = _stream(text, split_chunks(text, 1))
    assert visible.stopped
    assert visible.text == f"{BEFORE} {AFTER}"


def test_when_markdown_and_stage_directions_stream_then_they_never_show_and_the_chapter_matches():
    text = ("# The Cave\n\nYou walk **slowly** into the *dark* cave.\n(Laughter)\n#Story 2:\n"
            "Mira __smiles__. [Music] Then on.")
    visible, pieces = _stream(text, split_chunks(text, chunk_chars=3))
    shown = "".join(pieces)
    assert not any(mark in shown for mark in ("*", "#", "__", "Laughter", "Music", "Story 2"))
    assert " ".join(shown.split()) == " ".join(visible.text.split())
    assert visible.screened()["markdown"] >= 6


def test_when_a_lexicon_allows_a_word_then_the_general_list_does_not_match_it():
    lexicon = Lexicon({"profanity": ["poof", "snatch", "fuck"]}, allow=["poof", "snatch"])
    assert lexicon.hit(["poof"], {}) is None and lexicon.hit(["fuck"], {}) is not None


@pytest.mark.parametrize("sentence", ["A little girl on a white horse waved to you.",
                                      "The boat was tied up at the old dock.", "You strap on your helmet and climb.",
                                      "A big black cat sat on the wall.", "Taste my soup, said the cook."])
def test_when_a_childrens_story_says_a_phrase_of_the_general_list_innocently_then_it_stays(sentence):
    """Regression: the general list's "girl on" dropped a sentence of an embedded-model chapter."""
    text = f"{BEFORE} {sentence} {AFTER}"
    visible, pieces = _stream(text, split_chunks(text, 1))
    assert visible.text == text and "".join(pieces).strip() == text
    assert SAFETY.clean(text) == (text, [])


@pytest.mark.parametrize("text, term", [("You will never see that word again.", None),
                                        ("The bottle of cider was empty.", "bottle|bottles"),
                                        ("A glass of milk stood on the table.", None),
                                        ("Visible to the naked eye, the comet glowed.", "naked")])
def test_when_words_are_unfit_only_together_then_only_the_pair_is_dropped(text, term):
    screen = SentenceScreen(ScreenRules([SAFETY.lexicon]))
    screen.feed(text)
    screen.finish()
    found = [hit.term for hit in screen.hits]
    assert (found[0].startswith(term) if term else found == []), found


def test_when_an_operator_lists_more_terms_then_the_screen_drops_them_too(tmp_path):
    extra = tmp_path / "terms.yaml"
    extra.write_text("gore:\n  - spooky skeleton\nallow:\n  - hell\n")
    safety = ChildSafety(load_lexicon(extra))
    assert safety.clean("A spooky skeleton danced. The moon rose.")[0] == "The moon rose."
    assert safety.clean("Hell Creek was quiet. The moon rose.")[0] == "Hell Creek was quiet. The moon rose."


@pytest.mark.parametrize("content, problem", [("gore: [\n", "cannot be read"), ("- a list\n", "must map"),
                                              ("scary:\n  - boo\n", "unknown category"),
                                              ("gore: boo\n", "must be a list")])
def test_when_the_operators_terms_file_is_broken_then_start_up_names_it(tmp_path, content, problem):
    from service.content.loader import ContentError

    extra = tmp_path / "terms.yaml"
    extra.write_text(content)
    with pytest.raises(ContentError, match=problem) as raised:
        load_lexicon(extra)
    assert str(extra) in str(raised.value)


def test_when_a_character_exclaims_oh_my_god_then_the_sentence_is_dropped_as_profanity():
    text = f'{BEFORE} "Oh my god!" says she with her hair down. {AFTER}'
    visible, _ = _stream(text, split_chunks(text, 1))
    assert "god" not in visible.text.lower() and AFTER in visible.text
    assert {hit.category for hit in visible.screen.hits} == {"profanity"}
