from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.formatting import ParagraphFormatter, formatted_prefix
from service.domain.paragraphs import _clean, to_paragraphs

# CPU time is shared with the model and other suites: no per-example deadline.
PROPERTY = settings(deadline=None, max_examples=60)
FIXTURES = sorted((Path(__file__).parent / "fixtures" / "loops").glob("*.txt"))

# One sentence each, by the rule of paragraphs.split_sentences: the abbreviations, initials
# and quotations inside them are not sentence ends.
SENTENCES = [
    "Mira walked to the edge of the reef.",
    "Mr. Tomas waved from the boat.",
    "Dr. Reed smiled at J. R. Okafor.",
    '"Stop. Wait. Listen!" whispered Mira.',
    "“Look. There! Now?” said Mira.",
    "They found shells, e.g. Pearls and stones.",
    "They packed rope, lamps, etc. Then they left.",
    "The map said i.e. Nothing at all.",
    "Was that a whale?",
    "The lantern flickered…",
    "Ms. Amara laughed (the parrot did too).",
    "A wave rolled in!",
]
SPACES = st.sampled_from([" ", "  ", "\t "])
LINE_BREAKS = st.sampled_from(["\n", "\n\n", "\n\n\n\n", " \n", "\r\n", "\n \n"])


def _format(text: str, sizes: list[int] | None = None) -> str:
    formatter, out, index = ParagraphFormatter(), [], 0
    for size in sizes or [len(text) or 1]:
        out.append(formatter.feed(text[index:index + size]))
        index += size
    out.append(formatter.feed(text[index:]))
    return "".join(out) + formatter.finish()


def _shown_paragraphs(output: str) -> list[str]:
    return [c for p in output.split("\n\n") if regex.search(r"\w", c := _clean(p))]


@st.composite
def _story(draw, max_sentences: int = 14):
    paragraphs = draw(st.lists(st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=max_sentences),
                               min_size=1, max_size=4))
    text = ""
    for number, sentences in enumerate(paragraphs):
        if number:
            text += draw(LINE_BREAKS)
        text += sentences[0] + "".join(draw(SPACES) + s for s in sentences[1:])
    return text


CHUNKS = st.lists(st.integers(min_value=1, max_value=12), max_size=80)


@PROPERTY
@given(_story(), CHUNKS)
def test_when_text_is_split_into_any_chunks_then_the_output_is_the_same(text, sizes):
    assert _format(text, sizes) == _format(text)


@PROPERTY
@given(_story())
def test_when_text_is_formatted_then_breaks_fall_only_between_whole_sentences(text):
    paragraphs = _format(text).split("\n\n")
    rest = regex.sub(r"\s+", " ", text).strip()
    for paragraph in paragraphs:
        assert rest.startswith(regex.sub(r"\s+", " ", paragraph)), f"{paragraph!r} is not whole sentences"
        rest = rest[len(regex.sub(r"\s+", " ", paragraph)):].strip()
        assert not rest or any(rest.startswith(s) for s in SENTENCES), f"a sentence was split before {rest[:30]!r}"
    assert rest == ""


@PROPERTY
@given(_story())
def test_when_output_is_finished_into_paragraphs_then_they_are_the_ones_shown(text):
    output = _format(text)
    assert to_paragraphs(output) == _shown_paragraphs(output)


@PROPERTY
@given(_story())
def test_when_formatted_then_no_paragraph_has_more_than_four_sentences(text):
    for paragraph in _format(text).split("\n\n"):
        count = sum(paragraph.count(s) for s in SENTENCES)
        assert count <= 4 or len(regex.sub(r"\s+", " ", paragraph)) >= 450


@PROPERTY
@given(st.lists(st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=4), min_size=1, max_size=6))
def test_when_text_is_already_well_paragraphed_then_it_is_unchanged(paragraphs):
    text = "\n\n".join(" ".join(sentences) for sentences in paragraphs)
    assert _format(text) == text


@PROPERTY
@given(_story())
def test_when_the_model_has_written_a_letter_then_the_reader_has_seen_it(text):
    formatter, shown = ParagraphFormatter(), ""
    for char in text:
        shown += formatter.feed(char)
        if regex.match(r"\w", char):
            assert shown.endswith(char), f"{char!r} held back after {shown[-30:]!r}"


@PROPERTY
@given(st.one_of(_story(), st.sampled_from(FIXTURES).map(Path.read_text)), st.integers(min_value=0))
def test_when_a_text_is_cut_after_a_word_then_its_formatting_is_the_start_of_the_whole_texts(text, pick):
    # The chapter kept when a loop is cut off: what streamed, up to the cut.
    word_ends = [word.end() for word in regex.finditer(r"\w+[^\s\w]*", text)]
    start = text[:word_ends[pick % len(word_ends)]]
    assert formatted_prefix(_format(text), start) == _format(start)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One.\nTwo.", "One.\n\nTwo."),
        ("One.\n\n\n\nTwo.", "One.\n\nTwo."),
        ("One.\r\nTwo.", "One.\n\nTwo."),
        ("One.  \n  Two.", "One.\n\nTwo."),
        ("\n\nOne.\n\n", "One."),
        ("A cat.  A dog.", "A cat.  A dog."),
    ],
)
def test_when_model_breaks_lines_then_paragraphs_get_one_blank_line(text, expected):
    assert _format(text) == expected


def test_when_a_run_passes_the_target_length_then_it_breaks_at_the_next_sentence_end():
    sentence = "The long road wound between the hills and the quiet river, under a sky of slow clouds."
    output = _format(" ".join([sentence] * 8))
    assert output.split("\n\n") == [" ".join([sentence] * 4)] * 2


def test_when_the_sentence_end_is_inside_a_quotation_then_the_break_waits_for_the_quote_to_close():
    text = 'Ann ran. Bo hid. Cy sang. Di said, "Ed sat. Fay ran. Gus hid." Hal won.'
    assert _format(text) == 'Ann ran. Bo hid. Cy sang. Di said, "Ed sat. Fay ran. Gus hid."\n\nHal won.'


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.name)
def test_when_a_recorded_reply_streams_token_by_token_then_the_chapter_has_the_paragraphs_shown(path):
    text = path.read_text()
    output = _format(text, [3, 1, 4, 1, 5, 9, 2, 6] * (len(text) // 8))
    assert output == _format(text)
    assert to_paragraphs(output) == _shown_paragraphs(output)


def test_when_a_sentence_never_ends_then_it_is_broken_before_to_paragraphs_would():
    text = "Once upon a time the river sang. " + "and the stars and the moon, " * 80
    output = _format(text)
    assert max(len(p) for p in output.split("\n\n")) <= 700
    assert to_paragraphs(output) == _shown_paragraphs(output)
