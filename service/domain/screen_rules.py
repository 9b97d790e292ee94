"""What the child-safety screen (screen.py) judges text by: the categories of what it drops,
the lexicons of listed terms, and one text's rules (the directives and labels of the prompt
it answers, the headings and capitals a model copies from a prompt)."""
from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import regex

# What a model's text is judged by. The first eight are unfit for a child; the others are
# dropped for what they are, not counted against the chapter.
UNFIT = ("profanity", "gore", "self-harm", "sexual", "unsafe adults", "alcohol", "drugs", "hate")
INSTRUCTIONS = "instructions"
ANSWER = "answer"
CATEGORIES = (*UNFIT, INSTRUCTIONS, ANSWER)

# A word, also one disguised with symbols inside it ("f*ck", "sh!t", "$hit").
WORD = regex.compile(r"[\w$@](?:[\w$@*!'’-]*\w)?")
# Words of an echoed directive that make it recognisable as one.
DIRECTIVE_WORDS = 5
# A word is held while it is a listed word, or that word but for its last letter, and at
# least this long: "bitc", "shi", "fuc" wait; "bit", "as", "she" show at once.
_MIN_HELD = 3
# Words whose keys a lexicon keeps (a few MB at most, whatever the models write).
_KEYS_KEPT = 50_000
# Headings and labels a model writes into prose: "NOTE:", "Story 1:", "Chapter 3: The Cave".
# A label may carry a number ("TASK 1:", "LESSON QUESTION 2:"), as a small model numbers them.
_LABEL_NUMBER = r"(?:[ \t]+\d{1,3})?"
_ANY_LABEL = regex.compile(
    r"(?:[A-Z][A-Z'’]+(?:[ \t]+[A-Z][A-Z'’]+)*" + _LABEL_NUMBER
    + r"|(?i:chapter|story|part|scene|title|summary)(?:[ \t]+\w+)?)"
    r"[ \t]*(?:\([^)\n]{0,80}\))?[ \t]*:"
)
# A sentence that opens with words in capitals, after a "The" or not: a label a small model
# copied from its prompt, reworded ("The READER CHOSE: ...", "THE READER ANSWERS a
# question"), or shouting ("THEN YOU HAVE TO DO IT!"): three words in capitals, or any in
# capitals and a colon. ("OH NO, ..." is a story's.) Held from its second capital. Words
# after the first may be "A" or "I" ("THIS IS A LEGEND ...").
_CAPS_OPENING = regex.compile(
    r"(?:The[ \t]+)?[A-Z][A-Z'’]+(?:(?:[ \t]+(?:[A-Z][A-Z'’]+|[AI])){2}(?![\w'’])"
    r"|(?:[ \t]+[A-Z][A-Z'’]+)*[ \t]*(?:\([^)\n]{0,80}\))?[ \t]*:)")
_THE = regex.compile(r"The[ \t]+")


def normal(word: str) -> str:
    """A word as the screen compares it: case-folded, accents and curly apostrophes gone."""
    word = word.casefold().replace("’", "'")
    if not word.isascii():
        word = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    return word


def words_of(text: str) -> tuple[str, ...]:
    return tuple(normal(match.group()) for match in WORD.finditer(text))


@dataclass(frozen=True)
class Hit:
    category: str
    term: str

    @property
    def unfit(self) -> bool:
        return self.category in UNFIT


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    stem: bool  # the last word is a beginning ("drunk*")
    category: str

    @property
    def term(self) -> str:
        return " ".join(self.words) + ("*" if self.stem else "")


@dataclass(frozen=True)
class _Rule:
    """Words that are unfit together in one sentence, in any order ("blood" & "gushed")."""
    category: str
    term: str
    groups: tuple[tuple[str, ...], ...]  # alternatives; a word ending in "*" is a beginning


def may_become(partial: str, listed: str) -> bool:
    """Whether the word being written may be about to complete `listed` (see _MIN_HELD)."""
    if listed.endswith("*"):
        stem = listed[:-1]
        return partial.startswith(stem) or (len(partial) >= _MIN_HELD and len(stem) - len(partial) <= 1
                                            and stem.startswith(partial))
    return partial == listed or (len(partial) >= _MIN_HELD and len(listed) - len(partial) == 1
                                 and listed.startswith(partial))


class Lexicon:
    """Listed terms by category. A term is a word, a phrase (words in order), a word or
    phrase whose last word ends in `*` (any word beginning so), or groups joined by `&`
    whose alternatives are separated by `|`: a sentence holding one word of every group.
    Terms in `allow` are never matched, whatever list they come from; a term listed twice
    keeps the category it was first given.

    `terms`: categories to their terms, or (category, terms) pairs in the order that decides."""

    def __init__(self, terms: Mapping[str, Iterable[str]] | Iterable[tuple[str, Iterable[str]]] | None = None,
                 allow: Iterable[str] = ()) -> None:
        self.allow = list(allow)
        allowed = {words_of(term) for term in self.allow}
        # Keys are words, or beginnings ending in "*" ("drunk*").
        self.words: dict[str, str] = {}
        self.by_last: dict[str, list[_Phrase]] = {}       # phrases by their last word
        self.by_before_last: dict[str, list[_Phrase]] = {}
        self.rules: list[_Rule] = []
        self.members: dict[str, list[tuple[int, int]]] = {}  # (rule, group) of each word
        pairs = terms.items() if isinstance(terms, Mapping) else (terms or ())
        for category, listed in pairs:
            for term in listed:
                self._add(category, term.strip(), allowed)
        keys = {*self.words, *self.by_last, *self.members}
        self._exact = {key for key in keys if not key.endswith("*")}
        self._stems = {key[:-1] for key in keys if key.endswith("*")}
        self._stem_lengths = sorted({len(stem) for stem in self._stems})
        self._keys_of: dict[str, tuple[str, ...]] = {}
        # The forms of a word being written that wait (see _MIN_HELD).
        self._held = set()
        for key in self.words:
            word = key.rstrip("*")
            self._held.add(word)
            if len(word) > _MIN_HELD:
                self._held.add(word[:-1])

    def _add(self, category: str, term: str, allowed: set[tuple[str, ...]]) -> None:
        if "&" in term:
            groups = tuple(tuple(normal(w.strip()) for w in group.split("|") if w.strip()) for group in term.split("&"))
            for number, group in enumerate(groups):
                for word in group:
                    self.members.setdefault(word, []).append((len(self.rules), number))
            self.rules.append(_Rule(category, term, groups))
            return
        words = words_of(term)
        if not words or words in allowed:
            return
        last = words[-1] + ("*" if term.endswith("*") else "")
        if len(words) == 1:
            if not last.endswith("*") and any(last.startswith(key[:-1]) for key in self.words if key.endswith("*")):
                return  # a beginning listed before already covers it, with its category
            self.words.setdefault(last, category)
            return
        phrase = _Phrase(words, last.endswith("*"), category)
        self.by_last.setdefault(last, []).append(phrase)
        self.by_before_last.setdefault(words[-2], []).append(phrase)

    def keys(self, word: str) -> tuple[str, ...]:
        """The keys `word` is listed under: itself, and every listed beginning of it."""
        # Asked twice for most words of every chapter, of a vocabulary that repeats: kept.
        keys = self._keys_of.get(word)
        if keys is None:
            found = [word] if word in self._exact else []
            found += [word[:length] + "*" for length in self._stem_lengths
                      if length <= len(word) and word[:length] in self._stems]
            keys = tuple(found)
            if len(self._keys_of) < _KEYS_KEPT:
                self._keys_of[word] = keys
        return keys

    def hit(self, sentence: list[str], seen: dict[int, set[int]]) -> Hit | None:
        """What the sentence's last word completes: a listed word, a phrase, or a rule (whose
        groups seen so far in the sentence are kept in `seen`)."""
        keys = self.keys(sentence[-1])
        for key in keys:
            if (category := self.words.get(key)) is not None:
                return Hit(category, key)
        for key in keys:
            for phrase in self.by_last.get(key, ()):
                n = len(phrase.words)
                if len(sentence) >= n and tuple(sentence[-n:-1]) == phrase.words[:-1]:
                    return Hit(phrase.category, phrase.term)
        for key in keys:
            for index, group in self.members.get(key, ()):
                groups = seen.setdefault(index, set())
                groups.add(group)
                if len(groups) == len(self.rules[index].groups):
                    return Hit(self.rules[index].category, self.rules[index].term)
        return None

    def armed(self, sentence: list[str], seen: dict[int, set[int]]) -> set[str]:
        """Words (or beginnings, ending in "*") that would complete a phrase or a rule next."""
        armed = set()
        if sentence:
            for phrase in self.by_before_last.get(sentence[-1], ()):
                n = len(phrase.words)
                if len(sentence) >= n - 1 and tuple(sentence[len(sentence) - n + 1:]) == phrase.words[:-1]:
                    armed.add(phrase.words[-1] + ("*" if phrase.stem else ""))
        for index, groups in seen.items():
            rule = self.rules[index]
            if len(groups) == len(rule.groups) - 1:
                missing = next(number for number in range(len(rule.groups)) if number not in groups)
                armed.update(rule.groups[missing])
        return armed

    def may_become(self, partial: str) -> bool:
        """Whether a word still being written may be about to complete a listed word."""
        if partial in self._held:
            return True
        return any(may_become(partial, key) for key in self.keys(partial) if key in self.words)


@dataclass
class ScreenRules:
    """What one text is screened against: the listed terms, the directives of the prompt it
    answers (an echo of DIRECTIVE_WORDS of their words in a row is dropped), the labels of
    that prompt's lines (held while a sentence may be beginning with one), and how many
    unfit sentences end the text."""
    lexicons: list[Lexicon]
    directives: Iterable[str] = ()
    labels: Iterable[str] = ()
    unfit_stop: int = 2
    _grams: frozenset = field(init=False, repr=False)
    _gram_ends: dict = field(init=False, repr=False)
    _held_labels: regex.Pattern | None = field(init=False, repr=False)
    _held_firsts: frozenset[str] = field(init=False, repr=False)
    _labels: regex.Pattern | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # One set of rules is made per text screened (every chapter, choice and summary), from
        # the same few directives and labels: their grams and patterns are made once each.
        self._grams = frozenset().union(*map(_directive_grams, self.directives))
        self._gram_ends = _gram_ends(self._grams)
        self._held_labels, self._held_firsts, self._labels = _label_patterns(frozenset(self.labels))

    def echoes(self, sentence: list[str]) -> bool:
        return len(sentence) >= DIRECTIVE_WORDS and tuple(sentence[-DIRECTIVE_WORDS:]) in self._grams

    def echo_ends(self, sentence: list[str]) -> frozenset[str]:
        """The words that would make the sentence an echo of a directive next."""
        if len(sentence) < DIRECTIVE_WORDS - 1:
            return frozenset()
        return self._gram_ends.get(tuple(sentence[1 - DIRECTIVE_WORDS:]), frozenset())

    def is_label(self, text: str, start: int) -> bool:
        """A label of the prompt, or any heading or capitalised label, begins at `start`."""
        return bool((self._labels and self._labels.match(text, start)) or _ANY_LABEL.match(text, start))

    def may_be_label(self, text: str, start: int) -> bool:
        """The text from `start` may still turn out to be a label or an opening in capitals."""
        # Asked for every piece of text: a sentence that does not begin with a capital is told
        # at once, without a pattern.
        first = text[start:start + 1]
        if not ("A" <= first <= "Z"):
            return False
        if self._held_labels is not None and first in self._held_firsts:
            match = self._held_labels.match(text, start, partial=True)
            if match is not None and match.partial and match.end() - start >= 2:
                return True
        return _may_open_in_capitals(text, start)


def opens_in_capitals(text: str, start: int) -> bool:
    return _CAPS_OPENING.match(text, start) is not None


def _may_open_in_capitals(text: str, start: int) -> bool:
    """The sentence at `start` may still open in capitals, and nothing yet says otherwise:
    two capitals of its first word are written, or one after a "The"."""
    match = _CAPS_OPENING.match(text, start, partial=True)
    if match is None:
        return False
    if not match.partial:
        return True  # it opens in capitals already: dropped once the word being written ends
    the = _THE.match(text, start)
    head, capitals = (the.end(), 1) if the else (start, 2)
    written = text[head:head + capitals]
    return len(written) == capitals and written.isupper()


@functools.lru_cache(maxsize=256)
def _directive_grams(directive: str) -> frozenset[tuple[str, ...]]:
    words = words_of(directive)
    return frozenset(words[i:i + DIRECTIVE_WORDS] for i in range(len(words) - DIRECTIVE_WORDS + 1))


@functools.lru_cache(maxsize=64)
def _gram_ends(grams: frozenset[tuple[str, ...]]) -> dict[tuple[str, ...], frozenset[str]]:
    """Each gram's first words to the last words that complete a gram after them."""
    ends: dict[tuple[str, ...], set[str]] = {}
    for gram in grams:
        ends.setdefault(gram[:-1], set()).add(gram[-1])
    return {start: frozenset(words) for start, words in ends.items()}


@functools.lru_cache(maxsize=64)
def _label_patterns(labels: frozenset[str]) -> tuple[regex.Pattern | None, frozenset[str], regex.Pattern | None]:
    """(labels in capitals, their first characters, all labels): the first are held from
    their second letter; others ("Places:") would hold every sentence that begins like them
    ("Pl", "The"), so they are only dropped."""
    ordered = sorted({label.strip() for label in labels if label.strip()}, key=len, reverse=True)
    held = [label for label in ordered if label.isupper()]
    return _label_pattern(held), frozenset(label[0] for label in held), _label_pattern(ordered)


def _label_pattern(labels: list[str]) -> regex.Pattern | None:
    if not labels:
        return None
    names = "|".join(regex.escape(label) for label in labels)
    return regex.compile(rf"(?:{names}){_LABEL_NUMBER}[ \t]*(?:\([^)\n]{{0,80}}\))?[ \t]*:")
