"""A chapter's event log in memory: the text pieces an attempt has streamed, then its end,
and the readers following it. A reader who falls behind gets consecutive pieces merged into
one carrying the last id, so a slow reader never slows the writer. A stored chapter is
followed through a log that holds only its end. With several server processes, the writer's
log is also shared (`share`), and a reader elsewhere follows a mirror of it (chapters/shared.py).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from service.domain.chapter_events import ChapterEnd, EndEvent, EventIds, TextPiece


class EventLog:
    def __init__(self, ids: EventIds, end: ChapterEnd | None = None, mirror: bool = False) -> None:
        self.ids = ids
        # A mirror fills from another process's stream, and may lag behind what a reader saw
        # elsewhere (on the writer's own process, before it reached the stream).
        self.mirror = mirror
        self._first_id = ids.piece(1)
        # The text of each piece (piece n, from 0, has id _first_id + n): strings, which the
        # garbage collector does not track. Kept as TextPieces, a few hundred per chapter
        # for as long as the log is kept filled its oldest generation and made every full
        # collection tens of milliseconds long, a pause in every stream.
        self.texts: list[str] = []
        self.end = end
        self._wakeup = asyncio.Event()
        self._sink: Callable[[TextPiece | ChapterEnd], None] | None = None

    @classmethod
    def stored(cls, ids: EventIds, end: ChapterEnd) -> EventLog:
        """The log of an attempt that has ended, without its pieces (they are not stored)."""
        return cls(ids, end)

    @property
    def ended(self) -> bool:
        return self.end is not None

    def ending(self) -> EventLog:
        """This log's end alone: a page of a finished chapter shows it, not its draft."""
        return EventLog.stored(self.ids, self.end)

    def text(self, text: str) -> None:
        self.texts.append(text)
        self._wakeup.set()  # _notify, inlined: this runs once per token
        self._wakeup = asyncio.Event()
        if self._sink is not None:
            self._sink(TextPiece(self._first_id + len(self.texts) - 1, text))

    def close(self, end: ChapterEnd) -> None:
        """The attempt's end; only the first counts (a failure while finishing comes second)."""
        if self.end is None:
            self.end = end
            self._notify()
            if self._sink is not None:
                self._sink(end)

    def share(self, sink: Callable[[TextPiece | ChapterEnd], None]) -> None:
        """From now on every event also goes to `sink`, and those so far go there at once."""
        for number, text in enumerate(self.texts):
            sink(TextPiece(self._first_id + number, text))
        if self.end is not None:
            sink(self.end)
        else:
            self._sink = sink

    def _notify(self) -> None:
        # Waking every follower is one set(); a fresh Event makes the next wait block again.
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    async def follow(self, after: int | None = None) -> AsyncIterator[TextPiece | EndEvent]:
        """Every event after id `after` (see EventIds.resume_after), as it is published,
        up to and including the end's last event."""
        if self.mirror:
            await self._catch_up(after)
        texts = self.texts
        resume = self.ids.resume_after(after, len(texts), self.end)
        position = min(resume - self.ids.base, len(texts))
        while True:
            wakeup = self._wakeup
            if position + 1 == len(texts):  # a reader who keeps up: the next piece alone
                yield TextPiece(self._first_id + position, texts[position])
                position += 1
                continue
            if position < len(texts):
                piece, position = self._merged(position)
                yield piece
                continue
            if self.end is not None:
                for event in self.ids.end_events(self.end):
                    if event.id > resume:
                        yield event
                return
            await wakeup.wait()

    async def _catch_up(self, after: int | None) -> None:
        """Until the mirror holds the piece `after` names (or has ended), that id cannot be
        told from one never given out."""
        while after is not None and self.end is None and self.ids.piece(len(self.texts)) < after < self.ids.last:
            await self._wakeup.wait()

    def _merged(self, position: int) -> tuple[TextPiece, int]:
        end = len(self.texts)
        return TextPiece(self._first_id + end - 1, "".join(self.texts[position:end])), end
