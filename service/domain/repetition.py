"""Stops a chapter whose model has started to loop (the same sentence, or a long run of
words, again and again) or has run far past its length: at most the first few words of the
loop stream to the reader, and the chapter kept ends before them.
"""
from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterable, Iterator

import regex

from service.domain.paragraphs import starts_sentence

_WORD = regex.compile(r"\w+")
_CLOSING = regex.compile(r"[^\s\w]*")  # punctuation right after a word: "." "!”" "),"


class RepetitionGuard:
    """Story text in (any chunking), the part that may be shown out; then `text`, the part
    the chapter keeps.

    A loop is caught two ways, on words compared case-insensitively without punctuation:
    - "repeated words": the last `run_words` words already occurred, in that order, earlier
      in the chapter;
    - "repeated sentence": a sentence of at least `sentence_words` words that is the same as
      the sentence before it, or that already occurred `sentence_repeats - 1` times (loops
      of short sentences, caught before the run is long enough for the first rule).
    Sentences end as in `paragraphs.split_sentences`, except that quotation marks are
    ignored: a character who says the same sentence twice in a row is a loop too.
    Then `stopped` is True, `reason` says why, nothing more is shown, and `text` ends at the
    sentence end where the repeat begins, or a few words into the repeat when they finish a
    sentence begun before it ("repeated sentence"), or else right before the repeat,
    mid-sentence ("repeated words"). Past `max_chars` the guard stops at the next sentence
    end ("length cap"), or before the word that passes `max_chars + overrun`.

    What is shown, and why: every loop begins as an "echo", trailing words that repeat
    earlier words in order, but so do names and phrases in ordinary prose ("the old map",
    "said Mira"). So the first `shown_echo_words` words of an echo are shown as they come;
    only the rest of a longer echo is held, until a word breaks it (then it is shown) or it
    is recognised as a loop (then it is dropped). The word being written is shown at once
    unless, whatever word it turns out to be, it could make the echo longer than that or
    close a repeated sentence; past `max_chars` it waits for its end, as the cut may fall
    before it. Shown text is never taken back, so when a loop is recognised its first few
    words may have been shown: `text` ends before them (what was shown runs past it by at
    most `shown_echo_words` words) and is what the page is to show in the end. With
    `shown_echo_words` below `sentence_words`, no sentence of a loop shows twice, and the
    kept text holds no word of it. `text` and `reason` do not depend on how the input is
    chunked; what was shown past `text` does.
    """

    def __init__(self, run_words: int = 12, sentence_words: int = 5, sentence_repeats: int = 3,
                 max_chars: int = 4000, overrun: int = 600, shown_echo_words: int = 4) -> None:
        self.run_words = run_words
        self.sentence_words = sentence_words
        self.sentence_repeats = sentence_repeats
        self.max_chars = max_chars
        self.overrun = overrun
        self.shown_echo_words = shown_echo_words
        self.stopped = False
        self.reason: str | None = None
        self._text = ""
        self._shown = 0
        self._cut: int | None = None
        self._words: list[str] = []
        self._ends: list[int] = []
        self._where: dict[str, list[int]] = {}
        self._vocabulary: list[str] = []  # the words of `_where`, sorted
        self._echo = 0
        self._sentence_starts = [0]
        self._sentences: Counter[tuple[str, ...]] = Counter()
        self._last_sentence: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        """All the text shown so far."""
        return self._text[:self._shown]

    @property
    def text(self) -> str:
        """The text the chapter keeps, once stopped or finished (before that, `shown`)."""
        return self._text[:self._cut] if self._cut is not None else self.shown

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self._text += text
        self._scan(final=False)
        return self._release()

    def finish(self) -> str:
        if self.stopped:
            return ""
        self._scan(final=True)
        if not self.stopped:
            self._close_sentence(len(self._words))
        if not self.stopped:
            self._cut = len(self._text)
        return self._release()

    def _scan(self, final: bool) -> None:
        start = self._ends[-1] if self._ends else 0
        while not self.stopped and (word := _WORD.search(self._text, start)):
            if word.end() == len(self._text) and not final:
                return  # the word may go on
            self._add(word)
            start = word.end()

    def _add(self, word: regex.Match) -> None:
        index = len(self._words)
        if index and self._starts_sentence(word.start()):
            self._close_sentence(index)
            if self.stopped:
                return
            self._sentence_starts.append(index)
            if self._tail_end(index - 1) >= self.max_chars:
                return self._stop("length cap", self._tail_end(index - 1))
        if word.end() > self.max_chars + self.overrun:
            return self._stop("length cap", self._tail_end(index - 1))
        self._echo = self._echo_after(word.group().casefold())
        self._ends.append(word.end())
        if self._echo >= self.run_words:
            self._stop_repeat()

    def _echo_after(self, word: str) -> int:
        """Length of the longest run of trailing words, ending with `word`, seen before."""
        echo = self._run_length(reversed(self._where.get(word, ())))
        if word not in self._where:
            insort(self._vocabulary, word)
        self._where.setdefault(word, []).append(len(self._words))
        self._words.append(word)
        return echo

    def _run_length(self, positions: Iterable[int]) -> int:
        """Length of the longest run of trailing words followed by a word at one of
        `positions`, seen before; at most one more than the echo, which bounds it."""
        words, index, limit, best = self._words, len(self._words), self._echo + 1, 0
        for earlier in positions:
            length = 1
            while length < limit and earlier >= length and words[earlier - length] == words[index - length]:
                length += 1
            best = max(best, length)
            if best == limit:
                break
        return best

    def _starts_sentence(self, word_start: int) -> bool:
        return starts_sentence(self._text, self._ends[-1], word_start, in_quotes=False)

    def _close_sentence(self, end: int) -> None:
        sentence = tuple(self._words[self._sentence_starts[-1]:end])
        repeats, self._last_sentence = self._repeats(sentence), sentence
        if len(sentence) >= self.sentence_words:
            self._sentences[sentence] += 1
        if repeats:
            self._stop_repeat()

    def _repeats(self, sentence: tuple[str, ...]) -> bool:
        """Whether ending `sentence` now makes it a repeated sentence."""
        return len(sentence) >= self.sentence_words and (
            sentence == self._last_sentence or self._sentences[sentence] + 1 >= self.sentence_repeats)

    def _stop_repeat(self) -> None:
        first = len(self._words) - self._echo
        # A sentence begun before the repeat is finished when only a few repeated words
        # finish it; otherwise the text ends right before the repeat.
        ends = [start for start in self._sentence_starts if first <= start < first + self.sentence_words]
        if ends:
            return self._stop("repeated sentence", self._tail_end(ends[0] - 1))
        self._stop("repeated words", self._tail_end(first - 1))

    def _stop(self, reason: str, cut: int) -> None:
        self.stopped, self.reason, self._cut = True, reason, cut

    def _tail_end(self, index: int) -> int:
        """Where the text after word `index` stops being its closing punctuation."""
        if index < 0:
            return 0
        return _CLOSING.match(self._text, self._ends[index]).end()

    def _release(self) -> str:
        # A loop's cut may fall before what was shown: that stays shown, `text` drops it.
        end = self._cut if self._cut is not None else self._show_end()
        text, self._shown = self._text[self._shown:end], max(self._shown, end)
        return text

    def _show_end(self) -> int:
        """All the text, while the echo is no longer than `shown_echo_words` words (counting
        the word being written as the longest echo it could make); else up to that many."""
        words, first = len(self._words), len(self._words) - self._echo
        if len(self._text) < self.max_chars:  # past it, a cut may fall before the next word
            partial = _WORD.search(self._text, self._ends[-1] if self._ends else 0)
            if partial is not None:
                first = words + 1 - self._echo_with(partial)
            if words + (partial is not None) - first <= self.shown_echo_words:
                return len(self._text)
        return self._tail_end(min(first + self.shown_echo_words, words) - 1)

    def _echo_with(self, partial: regex.Match) -> int:
        """The longest echo the word being written could make, whatever word it turns out to
        be (any seen word it begins like). When it begins a sentence after a repeated one, a
        loop is recognised as soon as it is complete: it counts as lengthening the echo."""
        if self._words and self._starts_sentence(partial.start()) and self._repeats(self._open_sentence()):
            return self._echo + 1
        return self._run_length(self._seen_beginning(partial.group().casefold()))

    def _seen_beginning(self, prefix: str) -> Iterator[int]:
        """Where the words seen so far that begin with `prefix` are."""
        index = bisect_left(self._vocabulary, prefix)
        while index < len(self._vocabulary) and self._vocabulary[index].startswith(prefix):
            yield from self._where[self._vocabulary[index]]
            index += 1

    def _open_sentence(self) -> tuple[str, ...]:
        return tuple(self._words[self._sentence_starts[-1]:])
