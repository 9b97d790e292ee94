"""A model's token stream read in a task of its own, so that its reader can take, at any
moment, everything that has arrived since it last looked.

When the server keeps up, every take is one token. When it falls behind (many players on
two cores), the tokens that queued up meanwhile leave as one piece: the work done per
piece (filters, formatting, the SSE event, the socket write) is then paid once per batch,
and the stream catches up instead of falling further behind.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


class TokenBuffer:
    def __init__(self, tokens: AsyncIterator[str]):
        self._tokens = tokens
        self._pieces: list[str] = []
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task | None = None

    async def __aenter__(self) -> TokenBuffer:
        self._reader = asyncio.create_task(self._read(), name="model token reader")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await close_quietly(self._tokens)  # a reader cancelled before it started leaves the stream open

    async def _read(self) -> None:
        try:
            async for text in self._tokens:
                self._pieces.append(text)
                self._arrived.set()
        finally:
            self._arrived.set()  # the end, or a failure the next take raises

    async def take(self) -> tuple[str, int]:
        """Everything that arrived since the last take, and how many tokens it was; waits
        for at least one. ("", 0) at the end of the stream; the stream's error, raised."""
        while not self._pieces:
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
