import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from service.domain.paragraphs import split_sentences, strip_heading, to_paragraphs

BODY = "The cave was dark.\nMira lit the lantern."


@pytest.mark.parametrize(
    "heading",
    [
        "Chapter 3: The Cave\n",
        "Chapter 3: The Cave\n\n",
        "Chapter Three\n\n",
        "CHAPTER IV.\n",
        "# The Cave\n\n",
        "## Chapter 3\n",
        "**Chapter 3: The Cave**\n\n",
        "Title: The Cave\n\n",
        "The Whispering Cave\n\n",
        "\n\nChapter 3\nThe Cave\n\n",
        "# Chapter 3\n**The Cave**\n\n",
    ],
)
def test_when_heading_before_story_then_it_is_stripped(heading):
    assert strip_heading(heading + BODY) == BODY


@pytest.mark.parametrize(
    "text",
    [
        "Chapter by chapter, the map grew.\nMira smiled.",
        "Chapter three began with rain, as Mira had feared it would.\nShe ran.",
        '"Run!" Mira cried.\nThey ran.',
        "The wind howled through the cave, louder than any storm Mira had ever heard before.\nShe hid.",
        "Title pages were missing from the old book.\nShe frowned.",
        "The Cave",
        BODY,
    ],
)
def test_when_story_starts_with_a_sentence_then_it_is_kept(text):
    assert strip_heading(text) == text


SENTENCES = [
    "Mira walked to the edge of the reef.",
    "Mr. Tomas waved from the boat at 5 p.m. and smiled.",
    '"Stop. Wait. Listen!" whispered Dr. Reed.',
    "The fish, e.g. the silver ones, scattered in every direction.",
    "Was that a whale?",
    "“Look. There!” said Mira.",
    "They saw shells, pearls, sand, etc. and much more.",
    "St. Elmo's fire danced on the mast!",
    "The old map said i.e. nothing useful about the currents.",
]
ABBREVIATION_ENDINGS = ("Mr.", "Dr.", "St.", "e.g.", "i.e.", "etc.", "p.m.")


def _long_run(sentences, times):
    return " ".join(sentences * times)


def test_when_2000_char_run_then_split_into_short_paragraphs():
    text = _long_run(SENTENCES, 6)
    assert len(text) > 2000
    pieces = to_paragraphs(text, max_chars=700)
    assert len(pieces) >= 3
    assert all(len(piece) <= 700 for piece in pieces)
    assert " ".join(pieces) == text


@pytest.mark.parametrize("max_chars", [80, 150, 300, 700])
def test_when_long_run_split_then_abbreviations_and_quotes_never_split(max_chars):
    pieces = to_paragraphs(_long_run(SENTENCES, 5), max_chars=max_chars)
    assert all(not piece.endswith(ABBREVIATION_ENDINGS) for piece in pieces)
    assert all(piece.count('"') % 2 == 0 for piece in pieces)
    assert all(piece.count("“") == piece.count("”") for piece in pieces)
    assert {s for piece in pieces for s in split_sentences(piece)} == set(SENTENCES)


def test_when_sentence_longer_than_limit_then_it_stays_whole():
    long_sentence = "Mira swam " + "and swam " * 30 + "until dawn."
    pieces = to_paragraphs(f"{long_sentence} She rested. She ate.", max_chars=100)
    assert long_sentence in pieces


@pytest.mark.parametrize(
    "text, expected",
    [
        ("One.\n\nTwo.", ["One.", "Two."]),
        ("One.\nTwo.", ["One.", "Two."]),
        ("One.\r\n\r\n\r\nTwo.", ["One.", "Two."]),
        ("  One   has\tspaces.  \n", ["One has spaces."]),
        ("**Bold** start.\n# Heading line\n***\n---\n\nEnd.", ["Bold start.", "Heading line", "End."]),
        ("", []),
        ("\n \n\t\n", []),
    ],
)
def test_when_text_has_breaks_and_markdown_then_paragraphs_are_clean(text, expected):
    assert to_paragraphs(text) == expected


sentences = st.sampled_from(SENTENCES)
paragraph_texts = st.lists(sentences, min_size=1, max_size=40).map(" ".join)
separators = st.sampled_from(["\n", "\n\n"])


@given(st.lists(paragraph_texts, min_size=1, max_size=5), st.integers(60, 800), separators)
def test_when_paragraphs_split_then_pieces_fit_and_nothing_is_lost(paragraphs, max_chars, sep):
    pieces = to_paragraphs(sep.join(paragraphs), max_chars=max_chars)
    assert " ".join(pieces) == " ".join(paragraphs)
    for piece in pieces:
        parts = split_sentences(piece)
        assert len(piece) <= max_chars or len(parts) == 1
        assert 1 <= len(parts) <= 4 or len(piece) <= max_chars
        assert not piece.endswith(ABBREVIATION_ENDINGS)


@given(st.lists(paragraph_texts, min_size=1, max_size=5), st.integers(60, 800), separators)
def test_when_already_paragraphed_then_same_paragraphs_come_back(paragraphs, max_chars, sep):
    pieces = to_paragraphs("\n\n".join(paragraphs), max_chars=max_chars)
    assert to_paragraphs(sep.join(pieces), max_chars=max_chars) == pieces


@given(st.text(max_size=400), st.integers(20, 800))
@example("\x1f#0", 20)  # a separator Python strips as whitespace, before a heading mark
@example("# \x1f #0", 20)
@example("0*__*", 20)  # taking out "__" leaves "**"
def test_when_any_text_then_paragraphs_are_nonempty_and_stable(text, max_chars):
    pieces = to_paragraphs(text, max_chars=max_chars)
    assert all(piece and piece == piece.strip() and "\n" not in piece for piece in pieces)
    assert to_paragraphs("\n\n".join(pieces), max_chars=max_chars) == pieces


def test_when_short_paragraphs_given_then_they_come_back_unchanged():
    paragraphs = ["Mira walked to the reef.", 'She said, "Look. There!" and pointed.', "Was that a whale?"]
    assert to_paragraphs("\n\n".join(paragraphs)) == paragraphs
    assert to_paragraphs("\n".join(paragraphs)) == paragraphs
