"""Markdown and stage directions out of a model's story text while it streams: emphasis
markers, heading lines and directions in brackets ("(Laughter)") never reach the page, so
the stream shows only what the finished chapter keeps.
"""
from __future__ import annotations

import regex

# A heading line ("# The Cave", "#Story 1:") is dropped whole when it ends within this many
# characters; a longer "line" is prose after a stray "#", and only the marker goes.
MAX_HEADING_CHARS = 100
_HEADING = regex.compile(r"[ \t]*#+[ \t]*")
# "(Laughter)", "[Music]", "(Soft music)", "(sighs)": one or two words in brackets that begin
# with a capital, or a known direction. "(she was nine)" and "[r17]" are left alone.
_DIRECTION = regex.compile(
    r"""[(\[][ \t]*
    (?:[A-Z][\w'’-]*(?:[ \t]+[\w'’-]+)?
      |(?i:laugh|sigh|paus|music|applau|gasp|giggl|whisper|silen|cheer|cough|chuckl|sob|yawn)[\w'’-]*)
    [ \t]*[)\]]""",
    regex.VERBOSE,
)
_SPACE = regex.compile(r"[ \t]*")
_PLAIN = regex.compile(r"[^*`_(\[#\n]+")


class MarkdownCleaner:
    """Model text in (any chunking), the same text out without `*` and backtick markers,
    `__` runs, heading lines and stage directions; `cleaned` counts what was taken out.

    Held back, only until decided: a `_` at the end (it may begin `__`), a line that begins
    with `#` until it ends (at most MAX_HEADING_CHARS), and a `(` or `[` while what follows
    may still turn out to be a direction (a word or two). Everything else passes at once.
    """

    def __init__(self) -> None:
        self.cleaned = 0
        self._pending = ""
        self._line_start = True

    def feed(self, text: str) -> str:
        self._pending += text
        return self._drain(final=False)

    def finish(self) -> str:
        return self._drain(final=True)

    def _drain(self, final: bool) -> str:
        out, text, i = [], self._pending, 0
        while i < len(text):
            if self._line_start and (heading := _HEADING.match(text, i)) and "#" in heading.group():
                end = text.find("\n", i)
                if (end if end >= 0 else len(text)) - i > MAX_HEADING_CHARS:
                    i = heading.end()  # prose after a stray "#": only the marker goes
                elif end >= 0 or final:
                    i = end if end >= 0 else len(text)  # the heading line; its line break stays
                else:
                    break  # the heading line has not ended yet
                self.cleaned += 1
                continue
            if plain := _PLAIN.match(text, i):
                out.append(plain.group())
                self._line_start = self._line_start and not plain.group().strip(" \t")
                i = plain.end()
                continue
            char = text[i]
            if char in "*`":
                self.cleaned += text[i - 1:i] != char
                i += 1
                continue
            if char == "_":
                if i + 1 == len(text) and not final:
                    break  # it may begin "__"
                if "_" in (text[i + 1:i + 2], text[i - 1:i]):
                    self.cleaned += text[i - 1:i] != "_"
                    i += 1
                    continue
            elif char in "([":
                direction = _DIRECTION.match(text, i, partial=not final)
                if direction is not None and direction.partial:
                    break  # it may be a direction yet
                if direction is not None:
                    self.cleaned += 1
                    i = direction.end()
                    if self._line_start or not out or out[-1][-1:] in (" ", "\t", "\n"):
                        i = _SPACE.match(text, i).end()  # no double space where it was
                    continue
            out.append(char)
            self._line_start = char == "\n"
            i += 1
        self._pending = text[i:]
        return "".join(out)
