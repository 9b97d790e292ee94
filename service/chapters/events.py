"""A chapter's event log in memory: every event it has published, numbered, and the
followers waiting for the next one. A follower that falls behind gets consecutive chunks
merged into one event carrying the last id, so a slow reader never slows the writer.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class StreamEvent:
    id: int
    event: str
    data: str


class EventLog:
    def __init__(self) -> None:
        self.events: list[StreamEvent] = []
        self.closed = False
        self._wakeup = asyncio.Event()

    def publish(self, event: str, data: str) -> StreamEvent:
        item = StreamEvent(len(self.events) + 1, event, data)
        self.events.append(item)
        self._notify()
        return item

    def close(self) -> None:
        self.closed = True
        self._notify()

    def _notify(self) -> None:
        # Waking every follower is one set(); a fresh Event makes the next wait block again.
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    @property
    def chunk_count(self) -> int:
        return sum(1 for e in self.events if e.event == "chunk")

    async def follow(self, after_id: int = 0) -> AsyncIterator[StreamEvent]:
        """Every event after `after_id`, as it is published, until the log is closed."""
        position = max(after_id, 0)
        while True:
            wakeup = self._wakeup
            if position < len(self.events):
                item, position = self._next(position)
                yield item
                continue
            if self.closed:
                return
            await wakeup.wait()

    def _next(self, position: int) -> tuple[StreamEvent, int]:
        first = self.events[position]
        end = position + 1
        if first.event != "chunk":
            return first, end
        while end < len(self.events) and self.events[end].event == "chunk":
            end += 1
        if end == position + 1:
            return first, end
        merged = "".join(e.data for e in self.events[position:end])
        return StreamEvent(self.events[end - 1].id, "chunk", merged), end
