"""The text a player sees while a chapter streams: the model's tokens with the choices
block withheld and a leading heading ("Chapter 3: ...") dropped, so that what streams is
what the finished chapter keeps.
"""
from __future__ import annotations

from service.domain.choices import ChoiceBlockFilter
from service.domain.paragraphs import strip_heading

# A heading is a short first line; past this many characters the first line is story.
_HEADING_WINDOW = 120


class LeadingHeadingFilter:
    """Holds back the first line until it is known whether it is a heading."""

    def __init__(self) -> None:
        self._held = ""
        self._decided = False

    def feed(self, text: str) -> str:
        if self._decided:
            return text
        self._held += text
        body = self._held.lstrip()
        newline = body.find("\n")
        if newline == -1 and len(body) < _HEADING_WINDOW:
            return ""
        if newline != -1 and not body[newline + 1:].strip():
            return ""  # the line after a heading may be blank; wait for real text
        return self._release()

    def finish(self) -> str:
        return "" if self._decided else self._release()

    def _release(self) -> str:
        self._decided = True
        released = strip_heading(self._held.lstrip())
        self._held = ""
        return released


class VisibleText:
    """Model tokens in, safe-to-show story text out (unescaped: escaping is the page's job)."""

    def __init__(self) -> None:
        self.choices = ChoiceBlockFilter()
        self.heading = LeadingHeadingFilter()
        self.shown: list[str] = []

    def feed(self, token: str) -> str:
        return self._keep(self.heading.feed(self.choices.feed(token)))

    def finish(self) -> str:
        return self._keep(self.heading.feed(self.choices.finish()) + self.heading.finish())

    def _keep(self, text: str) -> str:
        if text:
            self.shown.append(text)
        return text

    @property
    def text(self) -> str:
        return "".join(self.shown)

    @property
    def raw(self) -> str:
        return self.choices.raw_text
