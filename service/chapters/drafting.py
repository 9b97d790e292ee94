"""The model's draft of a chapter, read through the visible-text filter (domain/stream_text.py)
as it streams: a reply whose first tokens yield no story text is asked for again before
anything is shown, and a chapter that ends far too short (or that a loop cut short) is asked
to go on, once, its continuation flowing on after what was shown.
"""
from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from service.domain.stream_text import VisibleText
from service.llm.client import ModelClient, ModelStreamBroken, ModelUnavailable, StreamStats
from service.llm.prompts import ChapterBrief, chapter_messages, continuation_messages

log = logging.getLogger(__name__)

# Replies asked for in all while they show nothing.
ATTEMPTS = 3
# Pieces of a reply with no story text among them: a heading, an echo of the prompt or a
# choices block alone. The filters hold back no more than a line, so such a reply is not
# going to become a chapter, and is dropped for another.
BLANK_PIECES = 48


async def drafted(brief: ChapterBrief, model: ModelClient, visible: VisibleText,
                  stats: StreamStats) -> AsyncIterator[str]:
    """The story text to show, as it comes; `visible` holds the chapter as it is kept. An
    empty piece says the story is over (`visible.story_over`) where no text came with it."""
    messages = chapter_messages(brief)
    # A prompt that ends with the assistant's first words is continued from them.
    opened = messages[-1]["role"] == "assistant"
    for attempt in range(ATTEMPTS):
        if attempt:
            log.info("chapter %s: the reply held no story text (%r), asking again", brief.number, visible.raw[:200])
            visible.restart()
        async for text in _read(model.stream(messages, stats, continue_reply=opened), visible, stats, BLANK_PIECES):
            yield text
        if visible.shown.strip() or visible.stopped:
            break
    if _far_too_short(visible, model.settings.chapter_min_words):
        log.info("chapter %s: only %d words%s, asking the model to go on", brief.number, len(visible.text.split()),
                 f" ({visible.guard.reason})" if visible.guard.stopped else "")
        if visible.guard.stopped:
            visible.resume()  # from the text kept, the loop left out
        going_on = continuation_messages(messages, visible.raw, continue_reply=model.local_chapters)
        try:
            if text := visible.feed("\n\n"):  # a paragraph break between the two replies
                yield text
            async for text in _read(model.stream(going_on, stats, continue_reply=model.local_chapters),
                                    visible, stats):
                yield text
        except (ModelUnavailable, ModelStreamBroken) as exc:  # what was shown stands as the chapter
            log.warning("chapter %s: the continuation failed: %r", brief.number, exc)


async def _read(tokens: AsyncIterator[str], visible: VisibleText, stats: StreamStats,
                blank_pieces: int | None = None) -> AsyncIterator[str]:
    async with aclosing(tokens) as pieces:
        count, blank = 0, blank_pieces is not None
        async for token in pieces:
            count += 1
            was_over = visible.story_over
            if text := visible.feed(token):
                if stats.first_text_at is None:
                    stats.first_text_at = time.monotonic()
                blank = blank and not text.strip()
                yield text
            elif visible.story_over and not was_over:
                yield ""  # the choices block has begun: the story is over, though nothing more shows
            if visible.stopped:
                return  # a loop, the length cap or unfit text: the rest of the reply is never shown
            if blank and count >= blank_pieces:
                return


def _far_too_short(visible: VisibleText, min_words: int) -> bool:
    """The model ended on its own, or a loop cut it off, before the choices and well short of
    a chapter (unfit text ends a chapter for good)."""
    ended = not visible.stopped or (visible.guard.stopped and visible.guard.reason != "length cap"
                                    and not visible.screen.stopped)
    return (bool(min_words) and ended and not visible.choices.has_block
            and bool(visible.shown.strip()) and len(visible.text.split()) < min_words)
