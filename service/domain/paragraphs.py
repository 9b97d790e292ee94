"""Turning a model's raw chapter text into clean paragraphs for display.

Owns heading removal, paragraph splitting, markdown clean-up and sentence-aware splitting of long runs.
"""
from __future__ import annotations

import math

import regex

MAX_HEADING_CHARS = 80
MAX_HEADING_LINES = 3
MAX_SENTENCES_PER_PIECE = 4
_NUMBER_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_CHAPTER_HEADING = regex.compile(
    rf"^[*_\s]*(?:chapter\s+(?:\d+|[ivx]+|{_NUMBER_WORDS})\b[*_\s]*(?:[:.\-–—]|$)|title\s*:)",
    regex.IGNORECASE,
)
# A line ending like this is prose, not a heading.
_SENTENCE_END = tuple('.!?…"\'”’),;:')
_OPENING_QUOTES = tuple('"“‘\'')

# Candidate sentence ends: terminal punctuation, any closing quotes/brackets, whitespace, then a
# capital letter or an opening quote. Whether it is a real end is decided by _is_sentence_end.
_BOUNDARY = regex.compile(r"[.!?…]+[\"'”’)\]]*(\s+)(?=[\"“‘'(\[]?[A-Z])")
_ABBREVIATIONS = frozenset(
    {
        "mr.", "mrs.", "ms.", "dr.", "st.", "e.g.", "i.e.", "etc.", "vs.", "a.m.", "p.m.", "jr.",
        "sr.", "prof.", "mt.", "approx.",
    }
)
_LAST_WORD = regex.compile(r"[\"'“‘(\[]*(\S+)$")
_LAST_WORD_WINDOW = 64
# Compiled once: the module-level regex functions look their pattern up on every call.
_INITIAL = regex.compile(r"\w\.")
# Python's str.strip also takes the separators \x1c-\x1f for whitespace, and the `regex`
# module's \s does not: marks behind them would otherwise survive one cleaning and not the next.
_LEADING_MARKS = regex.compile(r"^[#\s\x1c-\x1f]+")
_SPACES = regex.compile(r"\s+")
_LINES = regex.compile(r"\r?\n")
_WORD_CHARACTER = regex.compile(r"\w")


def _is_heading(line: str) -> bool:
    stripped = line.strip()
    if stripped.startswith("#") or _CHAPTER_HEADING.match(stripped):
        return True
    core = stripped.strip("*_ \t")
    return (
        bool(core)
        and len(stripped) < MAX_HEADING_CHARS
        and not core.endswith(_SENTENCE_END)
        and not core.startswith(_OPENING_QUOTES)
    )


def strip_heading(text: str) -> str:
    """Drop the title lines a model likes to put before the story, with the blank lines after them.

    Only lines that still have text after them are considered, so a one-line reply survives."""
    rest = text
    stripped_any = False
    for _ in range(MAX_HEADING_LINES):
        body = rest.lstrip("\r\n\t ")
        first, newline, after = body.partition("\n")
        if not newline or not after.strip() or not _is_heading(first):
            break
        rest = after
        stripped_any = True
    return rest.lstrip("\r\n") if stripped_any else text


def _clean(piece: str) -> str:
    # Until none is left: taking out one mark may join two halves into another ("*__*").
    while "**" in piece or "__" in piece:
        piece = piece.replace("**", "").replace("__", "")
    piece = _LEADING_MARKS.sub("", piece)
    return _SPACES.sub(" ", piece).strip()


def _is_sentence_end(text: str, match: regex.Match) -> bool:
    end = match.start(1)
    if text.count('"', 0, end) % 2 or text.count("“", 0, end) > text.count("”", 0, end):
        return False  # inside a quotation
    # The last word is looked for near the end only: a word longer than the window is no
    # abbreviation or initial either way, and the search need not try every earlier position.
    word = _LAST_WORD.search(text, max(0, end - _LAST_WORD_WINDOW), end)
    token = word.group(1).casefold() if word else ""
    if token.endswith("."):
        bare = token.rstrip("\"'”’)]")
        if bare in _ABBREVIATIONS or _INITIAL.fullmatch(bare):
            return False
    return True


def split_sentences(text: str) -> list[str]:
    """Sentences of one whitespace-collapsed paragraph; joining them with spaces gives it back.
    The service's one sentence splitter (summaries, scenes and prompts use it too). Not pysbd
    or syntok: on the same chapters they took 3.7 and 1.5 ms a chapter against 0.45 ms here,
    and the stream's own checks (`sentence_ends_at`, `starts_sentence`) must decide one
    boundary per piece as it arrives, which neither library offers."""
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if _is_sentence_end(text, match):
            sentences.append(text[start:match.start(1)])
            start = match.end(1)
    sentences.append(text[start:])
    return [s for s in sentences if s]


def _even_groups(sentences: list[str], count: int) -> list[str]:
    size, extra = divmod(len(sentences), count)
    groups, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        groups.append(" ".join(sentences[start:end]))
        start = end
    return groups


def _split_long(paragraph: str, max_chars: int) -> list[str]:
    """Pieces of a few sentences each, none over max_chars unless a single sentence already is."""
    sentences = split_sentences(paragraph)
    count = max(math.ceil(len(paragraph) / max_chars), math.ceil(len(sentences) / MAX_SENTENCES_PER_PIECE))
    count = min(count, len(sentences))
    while True:
        groups = _even_groups(sentences, count)
        if count == len(sentences) or all(len(group) <= max_chars for group in groups):
            return groups
        count += 1


def to_paragraphs(text: str, max_chars: int = 700) -> list[str]:
    """Clean display paragraphs; a paragraph longer than max_chars is split between sentences."""
    paragraphs = []
    for piece in _LINES.split(text):
        cleaned = _clean(piece)
        if not _WORD_CHARACTER.search(cleaned):
            continue  # blank lines and leftover decoration like "***" or "---"
        paragraphs.extend(_split_long(cleaned, max_chars) if len(cleaned) > max_chars else [cleaned])
    return paragraphs


TERMINAL_TAIL = regex.compile(r"[.!?…]+[\"'”’)\]]*\Z")
TAIL_WINDOW = 40
_GAP = regex.compile(r"\s+")
_TERMINAL = regex.compile(r"[.!?…]")
_LINE_BREAK = regex.compile(r"[\r\n]")
_DOUBLE_QUOTES = regex.compile(r"[\"“”]")


def sentence_ends_at(paragraph: str, gap: str, after: str) -> bool:
    """Whether the whitespace `gap` between `paragraph` (its text so far) and `after` (the next
    one or two characters) ends a sentence, by the rule of `paragraphs.split_sentences`."""
    tail = paragraph[-TAIL_WINDOW:]
    terminal = TERMINAL_TAIL.search(tail)
    if terminal is None:
        return False
    text = paragraph + gap + after[:2]
    match = _BOUNDARY.match(text, len(paragraph) - len(tail) + terminal.start())
    return match is not None and match.end(1) == len(paragraph) + len(gap) and _is_sentence_end(text, match)


def starts_sentence(text: str, previous_end: int, word_start: int, in_quotes: bool = True) -> bool:
    """Whether the word at `word_start` of `text` begins a new sentence, the word before it
    ending at `previous_end`: after a line break, or after a sentence end by the rule of
    `split_sentences`. `in_quotes=False` ignores quotation marks, so a sentence may also end
    inside a quotation."""
    between = text[previous_end:word_start]
    if between == " ":
        return False  # the common case, decided at once
    if _LINE_BREAK.search(between):
        return True
    gap = _GAP.search(between)
    if gap is None or not _TERMINAL.search(between, 0, gap.start()):
        return False
    paragraph_start = max(text.rfind("\n", 0, previous_end), text.rfind("\r", 0, previous_end)) + 1
    before = text[paragraph_start:previous_end + gap.start()]
    if not in_quotes:
        before = _DOUBLE_QUOTES.sub("", before)
    after = text[previous_end + gap.end():previous_end + gap.end() + 2]
    return sentence_ends_at(before, gap.group(), after)
