"""The text a player sees while a chapter streams: the model's tokens with the choices
block withheld, markdown and a leading heading ("Chapter 3: ...") dropped, loops stopped and
unfit sentences screened out, so that what streams is what the finished chapter keeps.
"""
from __future__ import annotations

from collections import Counter

import regex

from service.domain.choices import ChoiceBlockFilter
from service.domain.formatting import ParagraphFormatter, formatted_prefix
from service.domain.markdown import MarkdownCleaner
from service.domain.paragraphs import strip_heading
from service.domain.repetition import RepetitionGuard
from service.domain.screen import SentenceScreen, Unscreened
from service.domain.screen_rules import ScreenRules

# Only text that starts like a heading is held back, and only until its line ends: any
# other first token is shown at once, so the heading check never delays the first words.
_HEADING_START = regex.compile(r"\A[\s*_]*(?:#|chapter\b|title\s*:)", regex.IGNORECASE)
# A small model may begin by echoing a line of its prompt ("THE HERO'S SPECIAL PICK (...): ...").
_PROMPT_LABEL = regex.compile(r"\A[\s*_]*[A-Z][A-Z'’ ]{2,}[A-Z](?:\s*\([^)\n]*\))?\s*:")


class LeadingHeadingFilter:
    """Drops a leading heading line ("Chapter 3: ...", "# ...", "**Title:** ...") and any
    echoed prompt lines before it."""

    def __init__(self) -> None:
        self._held = ""
        self._decided = False

    def feed(self, text: str) -> str:
        if self._decided:
            return text
        self._held += text
        while (label := _PROMPT_LABEL.match(self._held, partial=True)) is not None and not label.partial:
            _, newline, rest = self._held.lstrip().partition("\n")
            if not newline:
                return ""  # the echoed line is not finished yet
            self._held = rest
        start = _HEADING_START.match(self._held, partial=True)
        if start is None and label is None:
            return self._release(self._held)
        if start is None or start.partial:
            return ""
        first, newline, rest = self._held.lstrip().partition("\n")
        if not newline or not rest.strip():
            return ""  # the heading line, or the blank line after it, is not finished yet
        return self._release(strip_heading(self._held.lstrip()))

    def finish(self) -> str:
        if self._decided:
            return ""
        label = _PROMPT_LABEL.match(self._held)
        return self._release("" if label else strip_heading(self._held.lstrip()))

    def _release(self, text: str) -> str:
        self._decided = True
        self._held = ""
        return text


class VisibleText:
    """Model tokens in, story text out (unescaped: escaping is the page's job), twice over:
    `shown`, what streams to the page as it comes, and `text`, the chapter as it is kept.

    The stages, in order: the choices block is withheld (once it begins, the story is over
    and every stage lets go of what it holds), markdown and stage directions cleaned, a
    leading heading dropped, a loop stopped (see RepetitionGuard), long runs broken into
    paragraphs as they flow, and sentences screened (see SentenceScreen). The two differ
    only where a loop's first few words or the beginning of a screened sentence have
    streamed: `text` leaves them out, and the finished chapter, built from it, replaces them
    on the page. Where the two overlap, their paragraph breaks are the same.
    """

    def __init__(self, max_chars: int = 4000, loop_preview_words: int = 4, rules: ScreenRules | None = None,
                 screened: bool = True, sentence_repeats: int = 3) -> None:
        self._settings = (max_chars, loop_preview_words, rules, screened, sentence_repeats)
        self.choices = ChoiceBlockFilter()
        self.markdown = MarkdownCleaner()
        self.heading = LeadingHeadingFilter()
        self.guard = RepetitionGuard(max_chars=max_chars, shown_echo_words=loop_preview_words,
                                     sentence_repeats=sentence_repeats)
        self.formatter = ParagraphFormatter()
        self.screen = SentenceScreen(rules or ScreenRules([])) if screened else Unscreened()
        self._formatted: list[str] = []
        self._pieces: list[str] = []
        self._story_over = False
        self._owed = 0

    def restart(self) -> None:
        """Forget a reply that showed nothing, to read another one from its beginning."""
        if self.shown:
            raise ValueError("a reply whose text was shown cannot be taken back")
        self.__init__(*self._settings)

    def resume(self) -> None:
        """Go on after a loop cut the story short, from the text kept (the loop left out), as
        if that were all the model had written; what comes next is screened and guarded with
        it. Whatever of the loop was shown stays on the page until the finished chapter
        replaces it."""
        if not self.guard.stopped or self.screen.stopped or self._story_over:
            raise ValueError("only a story a loop cut short goes on")
        kept = self.text
        previewed = max(0, len(self.shown.split()) - len(kept.split()))
        self.__init__(*self._settings)
        # The loop's first words are on the page already: a second loop may show only what is
        # left of the preview, so no more than `loop_preview_words` of loops show in a chapter.
        self.guard.shown_echo_words = max(0, self.guard.shown_echo_words - previewed)
        self._owed = len(kept)  # on the page already: let out again, it is not shown twice
        self.feed(kept)

    @property
    def stopped(self) -> bool:
        """A loop, the length cap or unfit text has cut the chapter off: reading more of the
        model is pointless."""
        return self.guard.stopped or self.screen.stopped

    @property
    def story_over(self) -> bool:
        """All the story's text is shown and `text` is final: the choices block has begun
        (the rest of the reply is read only for its choices), or `finish` was called."""
        return self._story_over

    def feed(self, token: str) -> str:
        if self._story_over:
            self.choices.feed(token)  # the rest is the choices block, read for its choices
            return ""
        text = self.choices.feed(token)
        if self.choices.has_block:
            # The block has begun, so the story is over: what the stages hold (a possible
            # echo, a paragraph break) is released now, not when the whole block has come.
            return self._finish_stages(text)
        text = self.guard.feed(self.heading.feed(self.markdown.feed(text)))
        return self._screen(self.formatter.feed(text))

    def finish(self) -> str:
        if self._story_over:
            return ""
        return self._finish_stages(self.choices.finish())

    def _finish_stages(self, text: str) -> str:
        self._story_over = True
        text = self.markdown.feed(text) + self.markdown.finish()
        text = self.heading.feed(text) + self.heading.finish()
        text = self.guard.feed(text) + self.guard.finish()
        return self._screen(self.formatter.feed(text) + self.formatter.finish(), final=True)

    def _screen(self, formatted: str, final: bool = False) -> str:
        if formatted:
            self._formatted.append(formatted)
        text = self.screen.feed(formatted) + (self.screen.finish() if final else "")
        if text:
            self._pieces.append(text)
        if self._owed and text:
            seen = min(self._owed, len(text))
            self._owed -= seen
            text = text[seen:]
        return text

    @property
    def shown(self) -> str:
        return "".join(self._pieces)

    @property
    def text(self) -> str:
        """The chapter as kept (complete once finished): what streamed up to the guard's cut,
        without the sentences the screen dropped."""
        formatted = "".join(self._formatted)
        return self.screen.kept(len(formatted_prefix(formatted, self.guard.text))).strip()

    @property
    def raw(self) -> str:
        return self.choices.raw_text

    def screened(self) -> dict[str, int]:
        """What was taken out, by category, and how many markdown marks were cleaned."""
        counts = Counter(hit.category for hit in self.screen.hits)
        if self.markdown.cleaned:
            counts["markdown"] = self.markdown.cleaned
        return dict(counts)
