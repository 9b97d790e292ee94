"""A model's token stream read in a task of its own, so that its reader can take, at any
moment, everything that has arrived since it last looked.

When the server keeps up, every take is one token. When it falls behind (many players on
two cores), the tokens that queued up meanwhile leave as one piece: the work done per
piece (filters, formatting, the SSE event, the socket write) is then paid once per batch,
and the stream catches up instead of falling further behind.

Silence is watched by one timer per stream that looks at the time of the last token, not by
a timeout around every take: that costs a timer per token.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


class Silence(Exception):
    """No token came for the buffer's `idle` seconds."""


class TokenBuffer:
    def __init__(self, tokens: AsyncIterator[str], idle: float | None = None):
        self._tokens = tokens
        self._pieces: list[str] = []
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task | None = None
        self._idle = idle
        self._last = 0.0
        self._silent = False
        self._watch: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> TokenBuffer:
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._reader = asyncio.create_task(self._read(), name="model token reader")
        if self._idle is not None:
            self._watch = self._loop.call_later(self._idle, self._look)
        return self

    def _look(self) -> None:
        loop = self._loop
        quiet = loop.time() - self._last
        if quiet >= self._idle:
            self._silent = True
            self._arrived.set()
        else:
            self._watch = loop.call_later(self._idle - quiet, self._look)

    async def __aexit__(self, *_exc: object) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await close_quietly(self._tokens)  # a reader cancelled before it started leaves the stream open

    async def _read(self) -> None:
        try:
            async for text in self._tokens:
                self._pieces.append(text)
                self._last = self._loop.time()
                self._arrived.set()
        finally:
            self._arrived.set()  # the end, or a failure the next take raises

    async def take(self) -> tuple[str, int]:
        """Everything that arrived since the last take, and how many tokens it was; waits
        for at least one. ("", 0) at the end of the stream; the stream's error, raised;
        Silence once no token came for `idle` seconds."""
        while not self._pieces:
            if self._silent:
                raise Silence(f"no token for {self._idle:.0f} s")
            if self._reader.done():
                self._reader.result()
                return "", 0
            self._arrived.clear()
            await self._arrived.wait()
        pieces, self._pieces = self._pieces, []
        return "".join(pieces), len(pieces)


async def close_quietly(tokens: AsyncIterator) -> None:
    """Close a model's token stream; closing a broken one may fail again, and nothing more
    can be done about it then."""
    aclose = getattr(tokens, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            pass
