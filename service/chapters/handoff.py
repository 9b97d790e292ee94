"""The hand-off between a move and the chapter it starts. The chapter's generation asks the
model at once; the move stores the choice and the chapter's row meanwhile, and only then may
the generation write to the store. If the move cannot store them, the chapter is called off
and writes nothing at all.
"""
from __future__ import annotations

import asyncio
import contextlib

from service.domain.lifecycle import HandOffState

# The move stores its row once the model has the request, or after this long at most
# (seconds): the write's thread would otherwise hold the interpreter's lock while the
# request is on its way (3-5 ms measured).
ASK_WAIT = 0.05


class HandOff:
    def __init__(self, stored: bool = False) -> None:
        # Set by the model client once its server has taken the request, and by the
        # generation when it ends (the model will not be asked any more).
        self.asked = asyncio.Event()
        self._outcome: HandOffState | None = HandOffState.STORED if stored else None
        self._settled = asyncio.Event()
        if stored:
            self._settled.set()

    @classmethod
    def done(cls) -> HandOff:
        """A chapter whose row is already stored (the first chapter, a retry)."""
        return cls(stored=True)

    @property
    def state(self) -> HandOffState:
        if self._outcome is not None:
            return self._outcome
        return HandOffState.ASKED if self.asked.is_set() else HandOffState.ASKING

    async def model_asked(self) -> None:
        """The move waits here (ASK_WAIT at most) before it stores its row."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ASK_WAIT):
                await self.asked.wait()

    def stored(self) -> None:
        self._settle(HandOffState.STORED)

    def call_off(self) -> None:
        self._settle(HandOffState.CALLED_OFF)

    def _settle(self, outcome: HandOffState) -> None:
        if self._outcome is None:
            self._outcome = outcome
            self._settled.set()

    async def row_stored(self) -> bool:
        """The generation waits here before its first write: True once the row is stored,
        False when the chapter was called off (then it writes nothing)."""
        await self._settled.wait()
        return self._outcome is HandOffState.STORED
