"""Stops a chapter whose model has started to loop (the same sentence, or a long run of
words, again and again) or has run far past its length, before the reader sees the loop.
"""
from __future__ import annotations

from collections import Counter

import regex

from service.domain.paragraphs import sentence_ends_at

_WORD = regex.compile(r"\w+")
_CLOSING = regex.compile(r"[^\s\w]*")  # punctuation right after a word: "." "!”" "),"
_GAP = regex.compile(r"\s+")
_TERMINAL = regex.compile(r"[.!?…]")
_LINE_BREAK = regex.compile(r"[\r\n]")
_DOUBLE_QUOTES = regex.compile(r"[\"“”]")


class RepetitionGuard:
    """Story text in (any chunking), the part that is safe to show out.

    A loop is caught two ways, on words compared case-insensitively without punctuation:
    - "repeated words": the last `run_words` words already occurred, in that order, earlier
      in the chapter;
    - "repeated sentence": a sentence of at least `sentence_words` words that is the same as
      the sentence before it, or that already occurred `sentence_repeats - 1` times (loops
      of short sentences, caught before the run is long enough for the first rule).
    Sentences end as in `paragraphs.split_sentences`, except that quotation marks are
    ignored: a character who says the same sentence twice in a row is a loop too.
    Then `stopped` is True, `reason` says why, and nothing more is shown: the text ends at
    the sentence end where the repeat begins, or a few words into the repeat when they
    finish a sentence begun before it ("repeated sentence"), or else right before the
    repeat, mid-sentence ("repeated words"). Past `max_chars` the guard stops at the next
    sentence end ("length cap"), or at `max_chars + overrun` if no sentence ends by then.

    Held back, and why it must be: the word being written (it may start or extend a
    repeat) and the "echo", the trailing words that repeat words seen earlier, until a word
    breaks the echo. Shown text is never taken back, so the start of a loop has to be still
    held when the loop is recognised. In ordinary prose the echo is a common word or
    phrase ("the", "said Mira", "the old map"): the text trails the model by a word or
    three. Only while the model really repeats itself does the held text grow, up to
    `run_words` words, and then it is dropped. Whitespace after the last shown word waits
    for the next word. The output does not depend on how the input is chunked.
    """

    def __init__(self, run_words: int = 12, sentence_words: int = 5, sentence_repeats: int = 3,
                 max_chars: int = 4000, overrun: int = 600) -> None:
        self.run_words = run_words
        self.sentence_words = sentence_words
        self.sentence_repeats = sentence_repeats
        self.max_chars = max_chars
        self.overrun = overrun
        self.stopped = False
        self.reason: str | None = None
        self._text = ""
        self._shown = 0
        self._cut: int | None = None
        self._words: list[str] = []
        self._ends: list[int] = []
        self._where: dict[str, list[int]] = {}
        self._echo = 0
        self._sentence_starts = [0]
        self._sentences: Counter[tuple[str, ...]] = Counter()
        self._last_sentence: tuple[str, ...] = ()

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
            return self._stop("length cap", self._frontier())
        self._echo = self._echo_after(word.group().casefold())
        self._ends.append(word.end())
        if self._echo >= self.run_words:
            self._stop_repeat()

    def _echo_after(self, word: str) -> int:
        """Length of the longest run of trailing words, ending with `word`, seen before."""
        words, index, limit, best = self._words, len(self._words), self._echo + 1, 0
        for earlier in reversed(self._where.get(word, ())):
            length = 1
            while length < limit and earlier >= length and words[earlier - length] == words[index - length]:
                length += 1
            best = max(best, length)
            if best == limit:
                break
        words.append(word)
        self._where.setdefault(word, []).append(index)
        return best

    def _starts_sentence(self, word_start: int) -> bool:
        previous_end = self._ends[-1]
        between = self._text[previous_end:word_start]
        if _LINE_BREAK.search(between):
            return True
        gap = _GAP.search(between)
        if gap is None or not _TERMINAL.search(between, 0, gap.start()):
            return False
        paragraph_start = max(self._text.rfind("\n", 0, previous_end), self._text.rfind("\r", 0, previous_end)) + 1
        before = _DOUBLE_QUOTES.sub("", self._text[paragraph_start:previous_end + gap.start()])
        after = self._text[previous_end + gap.end():previous_end + gap.end() + 2]
        return sentence_ends_at(before, gap.group(), after)

    def _close_sentence(self, end: int) -> None:
        sentence = tuple(self._words[self._sentence_starts[-1]:end])
        again, self._last_sentence = sentence == self._last_sentence, sentence
        if len(sentence) < self.sentence_words:
            return
        self._sentences[sentence] += 1
        if again or self._sentences[sentence] >= self.sentence_repeats:
            self._stop_repeat()

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

    def _frontier(self) -> int:
        if not self._words:
            return 0
        return self._tail_end(len(self._words) - 1 - self._echo)

    def _release(self) -> str:
        end = self._cut if self._cut is not None else self._frontier()
        if self._cut is None and self._echo == 0 and len(self._text) < self.max_chars:
            end = self._novel_end(end)
        text, self._shown = self._text[self._shown:end], max(self._shown, end)
        return text

    def _novel_end(self, end: int) -> int:
        """Past the frontier there is only the word being written. Every repeat begins with
        a word seen before, so a word that no earlier word begins like is shown at once
        instead of waiting for the next token. (Below the length cap only: there a cut may
        fall before the word.)"""
        partial = _WORD.search(self._text, end)
        if partial is None:
            return end  # spaces or punctuation after the last word wait for what follows
        start = partial.group().casefold()
        if any(seen.startswith(start) for seen in self._where):
            return end
        return len(self._text)
