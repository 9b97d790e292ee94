"""How many chapters are written at once. Past the cap a chapter waits its turn, first come
first served, before it reads its story or calls the model; until then its page says it is
waiting for a storyteller. A flood of chapters then queues instead of slowing every stream.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


class ChapterCapacity:
    def __init__(self, limit: int):
        """`limit` chapters at once; 0 means no limit."""
        self.limit = limit
        self._slots = asyncio.Semaphore(limit) if limit > 0 else None
        self._waiting: set[int] = set()

    @contextlib.asynccontextmanager
    async def turn(self, chapter: Any) -> AsyncIterator[None]:
        """Held while `chapter` (any object standing for one chapter's writing) is written."""
        if self._slots is None:
            yield
            return
        key = id(chapter)
        if self._slots.locked():
            self._waiting.add(key)
        try:
            async with self._slots:
                self._waiting.discard(key)
                yield
        finally:
            self._waiting.discard(key)

    def is_waiting(self, chapter: Any) -> bool:
        return id(chapter) in self._waiting

    @property
    def waiting(self) -> int:
        return len(self._waiting)
