from collections import Counter
from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.paragraphs import split_sentences, to_paragraphs
from service.domain.repetition import RepetitionGuard

LOOPS = Path(__file__).parent / "fixtures" / "loops"
LOOPING = sorted(LOOPS.glob("looping-*.txt"))
NORMAL = sorted(LOOPS.glob("normal-*.txt"))
# CPU time is shared with the model and other suites: no per-example deadline.
PROPERTY = settings(deadline=None, max_examples=40)
CHUNKS = st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=60)
# Prose that repeats names and phrases, as stories do, without looping.
STORY = (
    'The old map was torn, said Mira. She held the old map up to the lantern. "Look," said Mira, '
    '"the old map shows a door." Tomas looked at the old map. "A door under the hill," said Tomas. '
    "They walked to the hill. They walked around the hill. The door under the hill was green. "
    '"The old map was right," said Mira. "The old map was right," said Tomas, and they laughed.'
)


def _guard(text: str, sizes: list[int] | None = None, **options) -> tuple[str, RepetitionGuard]:
    guard, out, index = RepetitionGuard(**options), [], 0
    for size in sizes or [len(text) or 1]:
        out.append(guard.feed(text[index:index + size]))
        index += size
    out.append(guard.feed(text[index:]))
    return "".join(out) + guard.finish(), guard


def _words(sentence: str) -> tuple[str, ...]:
    return tuple(regex.findall(r"\w+", sentence.casefold()))


def _sentences(text: str) -> list[tuple[str, ...]]:
    """Sentences by split_sentences' rule, also inside quotations."""
    paragraphs = to_paragraphs(regex.sub(r"[\"“”]", "", text), max_chars=10**6)
    return [_words(s) for p in paragraphs for s in split_sentences(p)]


@pytest.mark.parametrize("path", LOOPING, ids=lambda path: path.name)
def test_when_the_model_loops_then_the_guard_stops_before_any_sentence_repeats(path):
    text = path.read_text()
    output, guard = _guard(text)
    assert guard.stopped and guard.reason in ("repeated sentence", "repeated words")
    assert text.startswith(output) and len(output) < len(text)
    repeats = [s for s, n in Counter(_sentences(output)).items() if n > 1 and len(s) >= 3]
    assert not repeats, f"shown more than once: {repeats}"
    if guard.reason == "repeated sentence":
        assert output.endswith((".", "!", "?", '."', ".”")), f"ends mid-sentence: {output[-40:]!r}"


@pytest.mark.parametrize("path", NORMAL + [None], ids=lambda path: path.name if path else "story")
def test_when_prose_repeats_names_and_phrases_then_the_guard_shows_it_all(path):
    text = path.read_text() if path else STORY
    output, guard = _guard(text)
    assert not guard.stopped, f"stopped for {guard.reason}"
    assert output == text


@PROPERTY
@given(st.sampled_from(LOOPING + NORMAL), CHUNKS)
def test_when_text_is_split_into_any_chunks_then_the_guard_decides_the_same(path, sizes):
    text = path.read_text()
    whole, guard = _guard(text)
    chunked, chunked_guard = _guard(text, sizes * (len(text) // sum(sizes) + 1))
    assert (chunked, chunked_guard.reason) == (whole, guard.reason)


@PROPERTY
@given(st.lists(st.sampled_from(["fox", "owl", "map", "lamp", "reef"]), min_size=3, max_size=4, unique=True), CHUNKS)
def test_when_a_word_run_repeats_inside_a_sentence_then_one_copy_is_shown(run, sizes):
    text = "At dusk the " + " and the ".join([" ".join(run)] * 12) + "."
    output, guard = _guard(text, sizes)
    assert guard.reason == "repeated words"
    assert output == "At dusk the " + " ".join(run) + " and"


@PROPERTY
@given(st.integers(min_value=120, max_value=900), CHUNKS)
def test_when_the_length_cap_is_reached_then_the_chapter_ends_at_a_sentence_end(cap, sizes):
    text = " ".join(f"Mira counted {n} stars above the tower, then {n + 1} more." for n in range(60))
    output, guard = _guard(text, sizes, max_chars=cap)
    assert guard.reason == "length cap"
    assert text.startswith(output) and output.endswith("more.")
    assert cap <= len(output) < cap + 60


def test_when_no_sentence_ends_past_the_cap_then_the_overrun_stops_it():
    text = " ".join(f"step{n}" for n in range(300))
    output, guard = _guard(text, max_chars=100, overrun=50)
    assert guard.reason == "length cap" and text.startswith(output) and 100 < len(output) <= 150


def test_when_a_short_sentence_comes_a_third_time_then_it_is_withheld():
    text = "You wake up. The bell rings in the tower. You smile. The bell rings in the tower. You wave. "
    output, guard = _guard(text + "The bell rings in the tower. You run.")
    assert guard.reason == "repeated sentence"
    assert output == text.rstrip()


def test_when_a_sentence_is_said_twice_in_a_row_then_the_second_is_withheld():
    text = 'The fox sat down. "I am not sure I can go. I am not sure I can go. I am not'
    output, guard = _guard(text)
    assert guard.reason == "repeated sentence"
    assert output == 'The fox sat down. "I am not sure I can go.'


def test_when_stopped_then_nothing_more_is_shown():
    _, guard = _guard("The sea is blue and wide. " * 5)
    assert guard.stopped
    assert guard.feed("A new sentence begins here.") == "" and guard.finish() == ""


def test_when_a_word_begins_unlike_any_earlier_word_then_it_is_shown_at_once():
    guard = RepetitionGuard()
    tokens = ["Lant", "erns", " glow", " softly", ",", " and", " the", " lant", "ern", " glows", "."]
    # Every repeat begins with a word seen before, so only such a word waits for its end.
    assert [guard.feed(token) for token in tokens] == [
        "Lant", "erns", " glow", " softly", ",", " and", " the", "", "", " lantern glows", "."]
