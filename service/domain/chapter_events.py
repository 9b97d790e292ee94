"""What a chapter's event log holds, typed: pieces of story text as they stream, then one end,
the finished chapter or a failure. And every id those events go out with, from one place.

Ids are numbered per attempt at a chapter (the first write, then each retry). An attempt owns
a span of ATTEMPT_SPAN ids: its text pieces count up from the span's start, and its end takes
the span's last ids. So an end always follows every piece its attempt sent, even when no one
knows how many that was (a process killed mid-chapter), and a retry's ids follow all of the
attempts before it. A chapter stores the last id of its latest attempt; nothing else is needed
to number any of its events again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from service.domain.fidelity import Legend
from service.domain.formatting import PARAGRAPH_BREAK
from service.domain.lifecycle import StreamEvent

# Far more than the text pieces of one chapter (at most one per shown character, and the
# shown text is capped by CHAPTER_MAX_CHARS), far less than ids a browser can count.
ATTEMPT_SPAN = 1_000_000
# The stored last id of a chapter's first attempt.
FIRST_LAST_ID = ATTEMPT_SPAN


class TextPiece(NamedTuple):
    """Story text as it streamed, not escaped; paragraphs are separated by PARAGRAPH_BREAK.
    (A named tuple: one is made per token, and a frozen dataclass costs four times more.)"""

    id: int
    text: str


@dataclass(frozen=True)
class Finished:
    """The chapter as kept: its paragraphs, its choices and what they answer."""

    paragraphs: tuple[str, ...]
    choices: tuple[str, ...]
    legend: Legend | None = None
    events: ClassVar[tuple[StreamEvent, ...]] = (StreamEvent.REPLACE_CONTENT, StreamEvent.CHOICES,
                                                 StreamEvent.CLOSE)


@dataclass(frozen=True)
class Failed:
    """The chapter could not be written; the message is for the player, next to a retry."""

    message: str
    events: ClassVar[tuple[StreamEvent, ...]] = (StreamEvent.CHAPTER_ERROR, StreamEvent.CLOSE)


ChapterEnd = Finished | Failed


class EndEvent(NamedTuple):
    """One of the events an end goes out as (see `events` of Finished and Failed)."""

    id: int
    name: StreamEvent
    end: ChapterEnd


def end_to_json(end: ChapterEnd) -> str:
    """An end as it travels between server processes (see end_from_json)."""
    if isinstance(end, Failed):
        return json.dumps({"failed": end.message})
    legend = end.legend and {"text": end.legend.text, "shown": end.legend.shown}
    return json.dumps({"paragraphs": end.paragraphs, "choices": end.choices, "legend": legend})


def end_from_json(data: str | bytes) -> ChapterEnd:
    found = json.loads(data)
    if "failed" in found:
        return Failed(found["failed"])
    legend = found["legend"] and Legend(found["legend"]["text"], found["legend"]["shown"])
    return Finished(tuple(found["paragraphs"]), tuple(found["choices"]), legend)


def paragraphs_of(text: str) -> tuple[str, ...]:
    """A stored chapter's paragraphs (it is stored as its paragraphs joined by breaks)."""
    return tuple(p for p in text.split(PARAGRAPH_BREAK) if p)


@dataclass(frozen=True)
class EventIds:
    """The ids of one attempt, known by its last id (what a chapter stores)."""

    last: int = FIRST_LAST_ID

    @property
    def base(self) -> int:
        """The id before the attempt's first: a reader who names it has seen nothing yet."""
        return self.last - ATTEMPT_SPAN

    def next_attempt(self) -> EventIds:
        return EventIds(self.last + ATTEMPT_SPAN)

    def piece(self, number: int) -> int:
        """The id of the attempt's `number`th text piece (from 1)."""
        return self.base + number

    def end_events(self, end: ChapterEnd) -> list[EndEvent]:
        first = self.last - len(end.events) + 1
        return [EndEvent(first + i, name, end) for i, name in enumerate(end.events)]

    def resume_after(self, after: int | None, pieces: int, end: ChapterEnd | None) -> int:
        """Where a reader who last saw event `after` resumes: right after it when it is an id
        this attempt has given out (a piece so far, or an end event before the last), else
        from the start. An id of another attempt, of a process that is gone, of the stream's
        last event, or none at all, starts the stream over: every stream ends with `close`."""
        if after is None:
            return self.base
        if self.base < after <= self.piece(pieces):
            return after
        if end is not None and any(event.id == after for event in self.end_events(end)[:-1]):
            return after
        return self.base
