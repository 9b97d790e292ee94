"""The one place a chapter's typed events become HTML, with their names and ids: a text piece
is its escaped text, the finished chapter its paragraphs and its choice forms, a failure its
message with a retry form. The SSE stream sends these as they are (streams.py); the chapter
page lays the same events out as HTML (templates/_chapter_body.html) while the chapter is
written, once it is stored, and for a reader who comes back alike.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NamedTuple

from markupsafe import Markup, escape

from service.domain.chapter_events import EndEvent, Failed, Finished, TextPiece
from service.domain.lifecycle import StreamEvent
from service.store.pictures import ChapterPictures
from service.web.render import Pages

# Browsers drop an SSE event whose data is empty, so `close` carries a word.
CLOSE_DATA = Markup("done")
_CHUNK = StreamEvent.CHUNK.value


class Rendered(NamedTuple):
    """One event, rendered. Made once per token: a named tuple is the cheapest to make, and
    its name is the StreamEvent's plain value (an enum costs microseconds more to format)."""

    name: str
    id: int
    html: Markup


class ChapterRendering:
    """Renders the events of one chapter of one adventure. `find_pictures`: how to find the
    pictures beside the first chapter's choices when they are rendered (a page; a stream's
    choices get theirs over the page's picture stream)."""

    def __init__(self, pages: Pages, adventure_id: str, number: int,
                 find_pictures: Callable[[], Awaitable[ChapterPictures | None]] | None = None):
        self.pages = pages
        self.adventure_id = adventure_id
        self.number = number
        self.find_pictures = find_pictures

    async def render(self, item: TextPiece | EndEvent) -> Rendered:
        if type(item) is TextPiece:  # the path of every token: nothing more than escaping
            return Rendered(_CHUNK, item.id, escape(item.text))
        return Rendered(item.name.value, item.id, Markup(await self._end_html(item)))

    async def rendered(self, items: AsyncIterator[TextPiece | EndEvent]) -> AsyncIterator[Rendered]:
        async for item in items:
            yield await self.render(item)

    async def _end_html(self, event: EndEvent) -> str:
        end = event.end
        if event.name is StreamEvent.REPLACE_CONTENT and isinstance(end, Finished):
            return await self.pages.paragraphs(end.paragraphs)
        if event.name is StreamEvent.CHOICES and isinstance(end, Finished):
            found = await self.find_pictures() if self.find_pictures else None
            return await self.pages.choices(self.adventure_id, self.number, end.choices, end.legend, found)
        if event.name is StreamEvent.CHAPTER_ERROR and isinstance(end, Failed):
            return await self.pages.error(self.adventure_id, self.number, end.message)
        return CLOSE_DATA
