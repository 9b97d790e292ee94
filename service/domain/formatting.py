"""Paragraphs while the text streams: the model's line breaks become blank lines and a long
run without one is broken at a sentence end, with the same sentence rule (abbreviations,
quotations) that `paragraphs.to_paragraphs` uses for the finished chapter.
"""
from __future__ import annotations

import regex

from service.domain.paragraphs import TAIL_WINDOW, TERMINAL_TAIL, sentence_ends_at

PARAGRAPH_BREAK = "\n\n"
_WORD = regex.compile(r"\S+")
_GAP = regex.compile(r"\s+")
_LINE_BREAK = frozenset("\r\n")
# What may open the next sentence before its capital letter (see paragraphs._BOUNDARY).
_OPENERS = frozenset("\"“‘'([")


class ParagraphFormatter:
    """Story text in (any chunking), the same text out with paragraph breaks set.

    - A whitespace run holding a line break becomes exactly "\\n\\n" (one newline, three, or
      "\\r\\n" alike); leading and trailing whitespace of the whole text is dropped.
    - Once a paragraph has `target_sentences` sentences or `target_chars` characters, the
      space after the next sentence end becomes "\\n\\n". A sentence end is never inside a
      quotation nor after an abbreviation or an initial (`paragraphs.split_sentences`).
    - A paragraph that reaches `max_chars` with no such end (a looping model, an endless
      speech) is broken at its next space, even inside a quotation. `to_paragraphs` splits
      any paragraph over 700 characters by itself; keeping under that (unless one word is
      over 60 characters) is what makes `to_paragraphs(output)` give exactly the
      paragraphs the page showed while the text streamed.
    - Everything else passes through character for character.

    Held back: only a whitespace run, until the next visible character arrives (the run
    may turn out to be a paragraph break), and when the run follows a sentence's final
    punctuation and that character is an opening quote or bracket, that one character too,
    until the next shows whether a capital starts a new sentence. A letter is shown the
    moment it arrives. The output does not depend on how the input is chunked.
    """

    def __init__(self, target_chars: int = 450, target_sentences: int = 4, max_chars: int = 640) -> None:
        self.target_chars = target_chars
        self.target_sentences = target_sentences
        self.max_chars = max_chars
        self._pending = ""
        self._paragraph = ""
        self._sentences = 0

    def feed(self, text: str) -> str:
        self._pending += text
        return self._drain(final=False)

    def finish(self) -> str:
        return self._drain(final=True)

    def _drain(self, final: bool) -> str:
        out, text, index = [], self._pending, 0
        while index < len(text):
            if word := _WORD.match(text, index):
                out.append(self._show(word.group()))
                index = word.end()
                continue
            gap = _GAP.match(text, index).group()
            after = text[index + len(gap):index + len(gap) + 2]
            if not final and not self._decidable(gap, after):
                break
            out.append(self._settle(gap, after))
            index += len(gap)
        self._pending = text[index:]
        return "".join(out)

    def _decidable(self, gap: str, after: str) -> bool:
        if not after:
            return False  # the run may go on, or hold a line break yet
        if len(after) == 2 or after[0] not in _OPENERS or _LINE_BREAK & set(gap):
            return True
        return TERMINAL_TAIL.search(self._paragraph[-TAIL_WINDOW:]) is None

    def _show(self, text: str) -> str:
        self._paragraph += text
        return text

    def _settle(self, gap: str, after: str) -> str:
        if not self._paragraph or not after:
            return ""  # whitespace before the first paragraph or after the last one
        if _LINE_BREAK & set(gap):
            return self._new_paragraph()
        if sentence_ends_at(self._paragraph, gap, after):
            self._sentences += 1
            if self._sentences >= self.target_sentences or len(self._paragraph) >= self.target_chars:
                return self._new_paragraph()
        if len(self._paragraph) >= self.max_chars:
            return self._new_paragraph()
        return self._show(gap)

    def _new_paragraph(self) -> str:
        self._paragraph, self._sentences = "", 0
        return PARAGRAPH_BREAK


def formatted_prefix(formatted: str, prefix: str) -> str:
    """The formatter's output for `prefix` alone, cut from `formatted`, its output for a text
    that begins with `prefix`. The formatter changes only whitespace, and sets each break by
    the text before it and the next two characters: when `prefix` ends with a word or its
    closing punctuation, the breaks within it are the same in both outputs."""
    visible = sum(len(word) for word in _WORD.findall(prefix))
    for word in _WORD.finditer(formatted):
        if visible <= len(word.group()):
            return formatted[:word.start() + visible]
        visible -= len(word.group())
    return formatted
