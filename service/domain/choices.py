"""The choices block that ends a chapter: spotting it mid-stream, parsing it, and repairing it.

Small models rarely write the block exactly as asked, so everything here is deliberately tolerant.
"""
from __future__ import annotations

from itertools import pairwise

import json_repair
import regex

# Prefix-monotone on purpose (no lookahead, no \Z, no trailing \b): a match found in a prefix of the
# stream must stay a match however the stream continues, or the filter could not commit early.
# No alternative crosses a newline before it completes, so a partial match can never hide a
# complete one that starts later; ChoiceBlockFilter relies on that.
# A tag alone is not a block: "her [choice] for a while" is story. It opens one at a line's
# start, or when a line break or a "Choice A:" label follows it (or, see block_start, when
# nothing follows it at all).
_TAG_PATTERN = r"[<\[][ \t]*/?[ \t]*choices?[ \t]*[>\]]"
_LINE_START = r"(?:\A|(?<=\n))[ \t*#\-_>]*"
BLOCK_START = regex.compile(
    rf"""
    (?:\A|(?<=\n)){_TAG_PATTERN}                       # <CHOICES> opening a line
    |
    {_TAG_PATTERN}[ \t]*                                # ... or mid-line, followed by
    (?:\r?\n|[*_]*(?:choice|option)[ \t]*[a-e1-5][*_ \t]*[:.)\-])   # a line break or "Choice A:"
    |
    {_LINE_START}                                       # line start, maybe under markdown decoration
    (?:
        (?:choice|option)[ \t]*[a-e1-5][*_ \t]*[:.)\-]  # Choice A:  Choice 1.  **Choice B)**
        | (?:your[ \t]+)?choices?[*_ \t]*:              # Choices:  **Choices:**  Your choices:
        | (?:your[ \t]+)?choices[*_ \t]*\r?\n           # ## Choices  /  **Choices** on its own line
    )
    """,
    regex.IGNORECASE | regex.VERBOSE,
)
# A tag that ends the whole reply (the model stopped right after it) opens a block too.
_TRAILING_TAG = regex.compile(rf"{_TAG_PATTERN}\s*\Z", regex.IGNORECASE)


def block_start(text: str, start: int = 0) -> int | None:
    """Where the choices block of a whole reply begins (searching from `start`), or None."""
    match = BLOCK_START.search(text, start) or _TRAILING_TAG.search(text, start)
    return match.start() if match is not None else None


_TAG = regex.compile(_TAG_PATTERN, regex.IGNORECASE)
_CLOSING_TAG = regex.compile(r"[<\[][ \t]*/[ \t]*choices?[ \t]*[>\]]", regex.IGNORECASE)
_HEADING = regex.compile(r"^[\s*#_>\-]*(?:your\s+)?(?:choices?|options)[\s*_]*:?[\s*_]*$", regex.IGNORECASE)
# "Choice A:", "Option 2)", "A)", "(b)", "1.", "- ", "* " ... with any bold/italic markers around it.
_LABEL = regex.compile(
    r"""^[\s#>]*
    (?P<bullet>[\-•+–—*](?=\s))?[\s*_]*
    (?P<name>
        (?:choice|option)\s*[a-e1-9][*_]*\s*(?:[:.)\-–—]|(?=\s))
        | [\[(]?[a-e1-9][*_]*\s*[:.)\]–—]
    )?[\s*_]*""",
    regex.IGNORECASE | regex.VERBOSE,
)
_INLINE_LABEL = regex.compile(
    r"(?<=\S\s+)(?=(?:\*\*)?(?:choice|option)\s*[a-e1-5][*_]*\s*[:.)])", regex.IGNORECASE
)
_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "[": "]", "(": ")", "`": "`"}
_PLACEHOLDER = regex.compile(r"\.\.\.|…|[\[\]<>{}]|\bChoice [A-E1-5]\b|(?i:\bTBD\b)")
# A choice is a button label: one a model wrote past these caps (by characters, by words, or
# with a "word" no story has) is not usable, and the repair call or the fallback replaces it.
MIN_CHOICE_CHARS = 2
MAX_CHOICE_CHARS = 160
MAX_CHOICE_WORDS = 24
MAX_CHOICE_WORD_CHARS = 30


class ChoiceBlockFilter:
    """Streams a chapter to the reader while hiding the choices block, even when its start is split
    across tokens: text that might be the start of the block is held back until it is decided.

    The emitted text keeps whatever whitespace preceded the block; rstrip story_text before storing it."""

    def __init__(self) -> None:
        self._text = ""
        self._emitted = 0
        self._block_start: int | None = None

    @property
    def raw_text(self) -> str:
        return self._text

    @property
    def story_text(self) -> str:
        end = self._block_start if self._block_start is not None else len(self._text)
        return self._text[:end]

    @property
    def has_block(self) -> bool:
        return self._block_start is not None

    def feed(self, token: str) -> str:
        self._text += token
        if self._block_start is not None:
            return ""
        # One search a token: a partial match can only be the last, at the text's end, so the
        # first match found is a whole block start if there is one.
        found = BLOCK_START.search(self._text, self._emitted, partial=True)
        if found is None:
            return self._emit_until(len(self._text))
        if not found.partial:
            self._block_start = found.start()
        return self._emit_until(found.start())

    def finish(self) -> str:
        # Held-back text whose match never completed was story after all, unless it is a tag
        # that ends the reply.
        if self._block_start is not None:
            return ""
        self._block_start = block_start(self._text, self._emitted)
        return self._emit_until(len(self._text) if self._block_start is None else self._block_start)

    def _emit_until(self, end: int) -> str:
        out = self._text[self._emitted:end]
        self._emitted = max(self._emitted, end)
        return out


def _clean_choice(line: str) -> tuple[bool, str]:
    """(had a label, the choice text without labels, markdown and wrapping quotes)."""
    label = _LABEL.match(line)  # always matches, possibly empty
    text = line[label.end():]
    text = text.replace("**", "").replace("__", "")
    return bool(label.group("bullet") or label.group("name")), _unwrap(regex.sub(r"\s+", " ", text))


def _mentions(inner: str, opener: str) -> bool:
    return opener in inner or _PAIRS[opener] in inner


def _unwrap(text: str) -> str:
    """Strip markdown and quotes/brackets around the whole choice, but only in matching pairs."""
    text = text.strip(" *_")
    while len(text) >= 2 and _PAIRS.get(text[0]) == text[-1] and not _mentions(text[1:-1], text[0]):
        text = text[1:-1].strip(" *_")
    return text


def _block_lines(block: str) -> list[str]:
    """Candidate choice lines. A closing tag ends the block once a choice was seen (later text is
    chatter); a closing tag before any choice is just a misspelt opening tag."""
    lines: list[str] = []
    for raw in block.splitlines():
        line = _TAG.sub(" ", raw).strip()
        if line and not _HEADING.match(line):
            lines.extend(part.strip() for part in _INLINE_LABEL.split(line) if part.strip())
        if lines and _CLOSING_TAG.search(raw):
            break
    return lines


def split_choices(text: str) -> tuple[str, list[str]]:
    """Story text before the block (rstripped) and every choice parsed from the block.

    When some lines carry labels ("Choice A:", "1.", "-") only those count, so a stray
    "What will you do?" inside the block is not taken for a choice."""
    start = block_start(text)
    if start is None:
        return text.rstrip(), []
    parsed = [_clean_choice(line) for line in _block_lines(text[start:])]
    parsed = [(labelled, choice) for labelled, choice in parsed if choice]
    if any(labelled for labelled, _ in parsed):
        parsed = [(labelled, choice) for labelled, choice in parsed if labelled]
    return text[:start].rstrip(), [choice for _, choice in parsed]


def is_valid_choice(choice: str) -> bool:
    """Whether the choice fits a button: within the caps on characters, words and word length,
    and no placeholder ("...", "Choice B", "TBD")."""
    words = choice.split()
    return (MIN_CHOICE_CHARS <= len(choice) <= MAX_CHOICE_CHARS and len(words) <= MAX_CHOICE_WORDS
            and max(map(len, words), default=0) <= MAX_CHOICE_WORD_CHARS and not _PLACEHOLDER.search(choice))


def parse_choice_reply(reply: str) -> list[str]:
    """The choices of a reply that holds them as JSON ({"choices": [...]}, or a bare list) or
    as a choices block."""
    if reply.lstrip().startswith(("{", "[")):
        data = json_repair.loads(reply)
        if isinstance(data, dict):
            data = data.get("choices")
        if isinstance(data, list):
            return [" ".join(str(item).split()) for item in data if isinstance(item, str | int | float)]
    return split_choices(reply if block_start(reply) is not None else f"<CHOICES>\n{reply}")[1]


def choices_in_sentence(sentence: str) -> list[str]:
    """The three actions of "follow the owl, ask the fox about the map, or look inside the
    chest." as buttons; [] unless the sentence holds exactly three."""
    head, separator, last = sentence.strip().rstrip(".").rpartition(", or ")
    parts = [uncut(part) for part in [*head.split(", "), last]] if separator else []
    if len(parts) != 3 or not all(parts):
        return []
    return [part[:1].upper() + part[1:] for part in parts]


def uncut(action: str) -> str:
    """An action (or a title) without the words it was cut after ("go to the market to buy
    food for"): a grammar that caps its words ends it wherever the cap falls."""
    words = action.split()
    while words and words[-1].casefold().replace("’", "'") in _DANGLING:
        words.pop()
    return " ".join(words)


def valid_choices(choices: list[str]) -> list[str] | None:
    """The first three choices, stripped, if they are usable as they are; otherwise None."""
    if len(choices) < 3:
        return None
    first = [choice.strip() for choice in choices[:3]]
    if len({choice.casefold() for choice in first}) < 3:
        return None
    return first if all(is_valid_choice(choice) for choice in first) else None


# An action ending in one of these words was cut off ("Follow the owl to the").
_DANGLING = frozenset({
    "the", "a", "an", "of", "to", "and", "or", "with", "at", "in", "on", "for", "from", "by", "your", "his",
    "her", "their", "its", "our", "my", "that", "which", "who", "but", "as", "into", "onto", "than", "if",
    "so", "is", "are", "was", "were", "be", "very", "some", "this", "these", "those", "about", "toward",
    "where", "when", "while", "because", "until", "whose", "what", "how",
    # A subject, or a verb that needs the words after it ("... a lamp that you can't").
    "i", "you", "we", "they", "he", "she", "you've", "you're", "you'll", "we're", "they're", "that's", "it's",
    "there's", "can", "can't", "could", "would", "will", "should", "must", "might", "may", "have", "has", "had",
    "do", "does", "did", "don't", "not", "been", "being",
    # Contractions that need the words after them too ("... to be the one who's").
    "who's", "what's", "where's", "here's", "he's", "she's", "i'm", "i've", "we've", "they've", "i'll", "he'll",
    "she'll", "we'll", "they'll", "it'll", "i'd", "you'd", "he'd", "she'd", "we'd", "they'd", "let's", "won't",
    "isn't", "aren't", "wasn't", "weren't", "doesn't", "didn't", "couldn't", "wouldn't", "shouldn't",
})
ACTION_WORDS = (3, 12)


def is_complete_action(choice: str) -> bool:
    """A button's action: 3 to 12 words that do not stop in the middle of a phrase."""
    words = regex.sub(r"[^\w\s'’-]", " ", choice).replace("’", "'").split()
    # The same word twice in a row is a small model stuck on it ("Ask el el el el").
    stuck = any(a.casefold() == b.casefold() for a, b in pairwise(words))
    return ACTION_WORDS[0] <= len(words) <= ACTION_WORDS[1] and words[-1].casefold() not in _DANGLING and not stuck


# Words of a choice that talks about the book or the task instead of the story's world, or
# speaks as "I": a model that lost the thread. A story is the book's only as "the story",
# "the next story": in a library, "Read a story to your brother" is an action of the world.
_OFF_STORY = regex.compile(r"\b(?:chapters?|(?:the|this|next|whole)[ \t]+stor(?:y|ies)|choices?|options?|"
                           r"instructions?|sentences?|list|I|I'm|I'll|me|my)\b")


# From a small model held to short words, a long word the story never used is more likely
# two words run together ("tellhimyoure") than a word.
_LONG_WORD = 10


def usable_choice(choice: str, story_text: str, story_words_only: bool = False) -> bool:
    """One choice that can stand as a button: within the caps, a complete action about the
    story's world, and not a sentence the story already told. `story_words_only`: its long
    words must be the story's."""
    if not (is_valid_choice(choice) and is_complete_action(choice)) or _OFF_STORY.search(choice):
        return False
    story = " ".join(story_text.casefold().split())
    if story_words_only and any(len(word) >= _LONG_WORD and word.casefold() not in story
                                for word in regex.findall(r"[\w'-]+", choice)):
        return False
    return len(choice.split()) < 4 or " ".join(choice.casefold().split()).rstrip(".!?") not in story


def sensible_choices(choices: list[str], story_text: str, story_words_only: bool = False) -> list[str] | None:
    """valid_choices, each a usable choice, and no two beginning or ending alike."""
    valid = valid_choices(choices)
    if valid is None or not all(usable_choice(c, story_text, story_words_only) for c in valid):
        return None
    distinct = all(len(set(map(key, valid))) == len(valid) for key in (_opening_words, _closing_words))
    return valid if distinct else None


def merged_choices(tries: list[list[str]], story_text: str, story_words_only: bool = False) -> list[str] | None:
    """Three choices from several tries of the same three kinds (A, B, C): for each place the
    first usable one, so that one bad line does not cost the other two."""
    picked: list[str] = []
    for place in range(3):
        for choices in tries:
            choice = choices[place].strip() if len(choices) > place else ""
            fresh = (_opening_words(choice) not in map(_opening_words, picked)
                     and _closing_words(choice) not in map(_closing_words, picked))
            if fresh and usable_choice(choice, story_text, story_words_only):
                picked.append(choice)
                break
    return picked if len(picked) == 3 else None


def _opening_words(choice: str) -> str:
    return " ".join(choice.casefold().split()[:3])


def _closing_words(choice: str) -> str:
    """The last four words of a longer choice: "Ask that is a place where people go" and
    "Look at that is a place where people go" are one choice twice."""
    words = regex.sub(r"[^\w\s'-]", " ", choice.casefold()).split()
    return " ".join(words[-4:]) if len(words) > 4 else " ".join(words)
