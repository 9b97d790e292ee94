from collections import Counter
from itertools import cycle, pairwise
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


def _tokens(text: str) -> list[str]:
    """Word-per-token chunking, as a model streams: each word with the whitespace before it."""
    return regex.findall(r"\s*\S+", text)


def _chunked(text: str, sizes: list[int]) -> list[str]:
    starts = [0]
    for size in cycle(sizes):
        if starts[-1] >= len(text):
            break
        starts.append(starts[-1] + size)
    return [text[start:end] for start, end in pairwise(starts)]


def _guard(text: str, chunks: list[str] | None = None, **options) -> tuple[str, RepetitionGuard]:
    """(the text shown as it streamed, the guard, whose `text` is what the chapter keeps)."""
    guard = RepetitionGuard(**options)
    shown = "".join(guard.feed(chunk) for chunk in (chunks or [text]))
    return shown + guard.finish(), guard


def _words(sentence: str) -> tuple[str, ...]:
    return tuple(regex.findall(r"\w+", sentence.casefold()))


def _sentences(text: str) -> list[tuple[str, ...]]:
    """Sentences by split_sentences' rule, also inside quotations."""
    paragraphs = to_paragraphs(regex.sub(r"[\"“”]", "", text), max_chars=10**6)
    return [_words(s) for p in paragraphs for s in split_sentences(p)]


def _repeated(text: str, min_words: int) -> list[tuple[str, ...]]:
    return [s for s, n in Counter(_sentences(text)).items() if n > 1 and len(s) >= min_words]


def _assert_streamed_at_most_the_start_of_a_loop(shown: str, guard: RepetitionGuard) -> None:
    assert shown.startswith(guard.text), f"the kept text is not what streamed: {guard.text[-40:]!r}"
    extra = _words(shown[len(guard.text):])
    assert len(extra) <= guard.shown_echo_words, f"streamed past the kept text: {extra}"


@pytest.mark.parametrize("path", LOOPING, ids=lambda path: path.name)
def test_when_the_model_loops_then_the_chapter_stops_before_any_sentence_repeats(path):
    text = path.read_text()
    shown, guard = _guard(text, _tokens(text))
    assert guard.stopped and guard.reason in ("repeated sentence", "repeated words")
    assert text.startswith(guard.text) and len(guard.text) < len(text)
    assert not _repeated(guard.text, 3), f"kept more than once: {_repeated(guard.text, 3)}"
    if guard.reason == "repeated sentence":
        assert guard.text.endswith((".", "!", "?", '."', ".”")), f"ends mid-sentence: {guard.text[-40:]!r}"


@pytest.mark.parametrize("path", NORMAL + [None], ids=lambda path: path.name if path else "story")
def test_when_prose_repeats_names_and_phrases_then_the_guard_shows_and_keeps_it_all(path):
    text = path.read_text() if path else STORY
    shown, guard = _guard(text, _tokens(text))
    assert not guard.stopped, f"stopped for {guard.reason}"
    assert shown == guard.text == text


@pytest.mark.parametrize("path", NORMAL + [None], ids=lambda path: path.name if path else "story")
def test_when_no_echo_is_longer_than_the_shown_words_then_every_token_shows_as_it_arrives(path):
    # The longest echo in these texts is 10 words ("an old map that had been passed down
    # through generations"); only a longer one would make a token wait.
    text = path.read_text() if path else STORY
    guard, tokens = RepetitionGuard(shown_echo_words=10), _tokens(text)
    for number, token in enumerate(tokens):
        assert guard.feed(token) == token, f"token {number} {token!r} waited"


@PROPERTY
@given(st.sampled_from(LOOPING + NORMAL), CHUNKS)
def test_when_text_is_split_into_any_chunks_then_the_guard_keeps_the_same_text(path, sizes):
    text = path.read_text()
    _, whole = _guard(text)
    _, chunked = _guard(text, _chunked(text, sizes))
    assert (chunked.text, chunked.reason) == (whole.text, whole.reason)


@PROPERTY
@given(st.sampled_from(LOOPING + NORMAL), st.one_of(st.none(), CHUNKS))
def test_when_text_streams_in_any_chunks_then_at_most_the_first_words_of_a_loop_show(path, sizes):
    text = path.read_text()
    shown, guard = _guard(text, _tokens(text) if sizes is None else _chunked(text, sizes))
    _assert_streamed_at_most_the_start_of_a_loop(shown, guard)
    assert not _repeated(shown, guard.sentence_words), f"shown twice: {_repeated(shown, guard.sentence_words)}"


@PROPERTY
@given(st.lists(st.sampled_from(["fox", "owl", "map", "lamp", "reef"]), min_size=3, max_size=4, unique=True), CHUNKS)
def test_when_a_word_run_repeats_inside_a_sentence_then_one_copy_is_kept(run, sizes):
    text = "At dusk the " + " and the ".join([" ".join(run)] * 12) + "."
    shown, guard = _guard(text, _chunked(text, sizes))
    assert guard.reason == "repeated words"
    assert guard.text == "At dusk the " + " ".join(run) + " and"
    _assert_streamed_at_most_the_start_of_a_loop(shown, guard)


@PROPERTY
@given(st.integers(min_value=120, max_value=900), CHUNKS)
def test_when_the_length_cap_is_reached_then_the_chapter_ends_at_a_sentence_end(cap, sizes):
    text = " ".join(f"Mira counted {n} stars above the tower, then {n + 1} more." for n in range(60))
    shown, guard = _guard(text, _chunked(text, sizes), max_chars=cap)
    assert guard.reason == "length cap"
    assert shown == guard.text and text.startswith(shown) and shown.endswith("more.")
    assert cap <= len(shown) < cap + 60


def test_when_no_sentence_ends_past_the_cap_then_the_overrun_stops_it():
    text = " ".join(f"step{n}" for n in range(300))
    shown, guard = _guard(text, max_chars=100, overrun=50)
    assert guard.reason == "length cap" and shown == guard.text
    assert text.startswith(shown) and 100 < len(shown) <= 150


def test_when_a_short_sentence_comes_a_third_time_then_it_is_not_kept():
    text = "You wake up. The bell rings in the tower. You smile. The bell rings in the tower. You wave. "
    reply = text + "The bell rings in the tower. You run."
    shown, guard = _guard(reply, _tokens(reply))
    assert guard.reason == "repeated sentence"
    assert guard.text == text.rstrip()
    assert shown == text + "The bell rings in"


def test_when_a_sentence_is_said_twice_in_a_row_then_the_second_is_not_kept():
    text = 'The fox sat down. "I am not sure I can go. I am not sure I can go. I am not'
    shown, guard = _guard(text, _tokens(text))
    assert guard.reason == "repeated sentence"
    assert guard.text == 'The fox sat down. "I am not sure I can go.'
    assert shown == guard.text + " I am not sure"


def test_when_a_new_sentence_follows_a_repeated_one_then_the_repeat_is_not_shown():
    # The new word cannot lengthen the echo, but it ends the repeated sentence: the loop.
    text = "The fox sat down. I am not sure I can go. I am not sure I can go. Then she ran."
    shown, guard = _guard(text, _tokens(text))
    assert guard.reason == "repeated sentence"
    assert shown == "The fox sat down. I am not sure I can go. I am not sure"


def test_when_stopped_then_nothing_more_is_shown():
    _, guard = _guard("The sea is blue and wide. " * 5)
    assert guard.stopped
    assert guard.feed("A new sentence begins here.") == "" and guard.finish() == ""


def test_when_a_word_could_make_the_echo_longer_than_the_shown_words_then_it_waits_for_its_end():
    guard = RepetitionGuard(shown_echo_words=4)
    tokens = ["The", " red", " fox", " ran", " home", ".", " The", " red", " fox", " ran", " home", " again", "."]
    # "home" could make "the red fox ran home" a fifth echo word; "again" shows it is not a loop.
    assert [guard.feed(token) for token in tokens] == [
        "The", " red", " fox", " ran", " home", ".", " The", " red", " fox", " ran", "", " home again", "."]
