"""The child-safety screen: a sentence that holds a word or phrase unfit for readers aged 8 to
12, a line of the model's own instructions, or (around a lesson) one of the question's answers
never reaches the page. Streaming text is screened as it comes; a word is held back only
while it could be about to complete a listed term, never for a whole sentence, never on a timer.
What it is judged by: screen_rules.py.
"""
from __future__ import annotations

import regex

from service.domain.paragraphs import starts_sentence
from service.domain.screen_rules import (
    DIRECTIVE_WORDS,
    INSTRUCTIONS,
    WORD,
    Hit,
    ScreenRules,
    may_become,
    normal,
    opens_in_capitals,
)

# What may still follow a word at the end of the text and belong to it.
_WORD_GOES_ON = regex.compile(r"[*!'’$@-]*")
# A label ends in a colon, at most this many characters into its sentence.
_LABEL_CHARS = 160
_COLON = regex.compile(r"[ \t]*\)?[ \t]*:")
# A sentence that opens in capitals (screen_rules.opens_in_capitals) is a label while it has
# at most this many words.
_CAPS_OPENING_WORDS = 4


class SentenceScreen:
    """Text in (any chunking), the part that may be shown out, sentence by sentence.

    A sentence that holds a hit shows nothing from the word that makes it one (that word
    never shows); the rest of it is dropped, and `kept` leaves out the whole sentence, also
    what showed of it before the hit. After `unfit_stop` unfit sentences the screen stops:
    `kept` ends at the last good sentence before the last of them. Sentences end as in
    `paragraphs.split_sentences`, and at every line break.

    Held back, and only until it is decided: a word being written that may be about to
    complete a listed word (itself or all but its last letter, three letters at least), or
    the last word of a phrase or rule whose other words the sentence already holds; and the
    start of a sentence that may be a label in capitals ("LESSON QUES...").
    """

    def __init__(self, rules: ScreenRules) -> None:
        self.rules = rules
        self.hits: list[Hit] = []
        self.stopped = False
        self._text = ""
        self._out: list[str] = []
        self._released = 0
        self._scanned = 0
        self._previous_end: int | None = None
        self._sentence: list[str] = []
        self._sentence_start = 0
        self._seen: list[dict[int, set[int]]] = [{} for _ in rules.lexicons]
        self._armed: set[str] = set()
        self._dropping = False
        self._drops: list[list[int]] = []  # [start, end) of each dropped sentence
        self._cut: int | None = None
        self._unfit = 0

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self._text += text
        self._scan(final=False)
        return self._flush()

    def finish(self) -> str:
        if self.stopped:
            return ""
        self._scan(final=True)
        self._end_sentence(len(self._text))
        self._emit(len(self._text))
        return self._flush()

    def kept(self, end: int | None = None) -> str:
        """The text up to `end` without its dropped sentences (and up to the cut, if stopped)."""
        end = len(self._text) if end is None else end
        if self._cut is not None:
            end = min(end, self._cut)
        pieces, position = [], 0
        for start, stop in self._drops:
            if start >= end:
                break
            pieces.append(self._text[position:start])
            position = stop
        if position < end:
            pieces.append(self._text[position:end])
        return "".join(pieces)

    def _scan(self, final: bool) -> None:
        position = self._scanned
        while not self.stopped and (word := WORD.search(self._text, position)):
            if not final and _WORD_GOES_ON.fullmatch(self._text, word.end()) is not None:
                return self._emit(self._show_limit(word))
            self._add(word)
            position = self._scanned = word.end()
        if not final and self._sentence and self.rules.may_be_label(self._text, self._sentence_start):
            return self._emit(self._sentence_start)
        self._emit(len(self._text))

    def _add(self, word: regex.Match) -> None:
        if self._previous_end is not None and starts_sentence(self._text, self._previous_end, word.start()):
            self._end_sentence(word.start())
        if not self._sentence:
            self._sentence_start = word.start()
        self._previous_end = word.end()
        self._sentence.append(normal(word.group()))
        if not self._dropping and (hit := self._hit(word.end())) is not None:
            self._drop(hit)

    def _hit(self, word_end: int) -> Hit | None:
        sentence, rules = self._sentence, self.rules
        if (_COLON.match(self._text, word_end) and word_end - self._sentence_start <= _LABEL_CHARS
                and rules.is_label(self._text, self._sentence_start)):
            return Hit(INSTRUCTIONS, " ".join(sentence))
        if len(sentence) <= _CAPS_OPENING_WORDS and opens_in_capitals(self._text, self._sentence_start):
            return Hit(INSTRUCTIONS, " ".join(sentence))
        self._armed = set()
        for lexicon, seen in zip(rules.lexicons, self._seen, strict=True):
            if (hit := lexicon.hit(sentence, seen)) is not None:
                return hit
            self._armed |= lexicon.armed(sentence, seen)
        if rules.echoes(sentence):
            return Hit(INSTRUCTIONS, " ".join(sentence[-DIRECTIVE_WORDS:]))
        # The word that would complete an echo of a directive waits, as a listed word does.
        self._armed |= rules.echo_ends(sentence)
        return None

    def _drop(self, hit: Hit) -> None:
        self.hits.append(hit)
        self._emit(self._sentence_start)  # what came before the sentence is good
        self._dropping = True
        self._drops.append([self._sentence_start, len(self._text)])
        if hit.unfit:
            self._unfit += 1
            if self._unfit >= self.rules.unfit_stop:
                self.stopped, self._cut = True, self._sentence_start

    def _end_sentence(self, next_start: int) -> None:
        if self._dropping:
            self._drops[-1][1] = next_start
            # What follows shows from the space before it, not from the dropped sentence.
            self._released = max(self._released, len(self._text[:next_start].rstrip()))
        self._dropping = False
        self._sentence, self._armed = [], set()
        self._seen = [{} for _ in self.rules.lexicons]

    def _show_limit(self, partial: regex.Match) -> int:
        """Up to the end, or up to the space before the word being written when it may be
        about to complete a term (or to the sentence start while it may be a label)."""
        begins = self._previous_end is None or starts_sentence(self._text, self._previous_end, partial.start())
        start = partial.start() if begins else self._sentence_start
        if self.rules.may_be_label(self._text, start):
            return start
        word = normal(partial.group())
        armed = set() if begins else self._armed
        if any(lexicon.may_become(word) for lexicon in self.rules.lexicons) or any(
                may_become(word, listed) for listed in armed):
            return len(self._text[:partial.start()].rstrip())
        return len(self._text)

    def _emit(self, limit: int) -> None:
        if not self._dropping and limit > self._released:
            self._out.append(self._text[self._released:limit])
            self._released = limit

    def _flush(self) -> str:
        out, self._out = "".join(self._out), []
        return out


class Unscreened:
    """The stream with no sentence screen, for measuring what the screen costs: text passes
    as it comes. Never for children: `python -m benchmarks --screen` alone uses it."""

    hits: list[Hit] = []
    stopped = False

    def __init__(self) -> None:
        self._text = ""

    def feed(self, text: str) -> str:
        self._text += text
        return text

    def finish(self) -> str:
        return ""

    def kept(self, end: int | None = None) -> str:
        return self._text[:end]


def screen_text(text: str, rules: ScreenRules) -> tuple[str, list[Hit]]:
    """A whole text (a summary, a choice, a description) without its dropped sentences."""
    screen = SentenceScreen(rules)
    screen.feed(text)
    screen.finish()
    return screen.kept(), screen.hits
